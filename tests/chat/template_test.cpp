// The template engine construct by construct, against what Python's jinja2 3.1 renders in
// transformers' sandboxed environment (each expectation was checked with jinja2).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "chat/template.h"

namespace loupe::chat {
namespace {

using nlohmann::ordered_json;

ordered_json default_context() {
  return ordered_json::parse(R"({
    "xs": [1, 2, 3], "d": {"a": 1, "b": [1, 2]}, "s": "héllo wörld", "n": null, "f": 1.5, "t": true,
    "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": null}],
    "nested": {"a": {"b": {"c": [1, {"d": "x"}]}}}
  })");
}

RenderOptions fixed_clock() {
  RenderOptions o;
  o.now = DateTime{2024, 7, 26, 12, 0, 0};
  return o;
}

std::string render(const std::string& source, const ordered_json& ctx = default_context(),
                   const RenderOptions& options = fixed_clock()) {
  TemplateError error;
  auto t = Template::parse(source, {}, &error);
  if (!t) return "PARSE ERROR " + error.to_string();
  auto out = t->render(ctx, options, &error);
  if (!out) return "ERROR " + error.to_string();
  return *out;
}

// The error a template raises (parse or render); kind kCount when it renders.
TemplateError error_of(const std::string& source, const ordered_json& ctx = default_context(),
                       const RenderOptions& options = fixed_clock()) {
  TemplateError error;
  error.kind = TemplateErrorKind::kCount;
  auto t = Template::parse(source, {}, &error);
  if (t) {
    auto out = t->render(ctx, options, &error);
    if (out) error.kind = TemplateErrorKind::kCount;
  }
  return error;
}

TEST(ChatTemplate, Output) {
  EXPECT_EQ(render("Hello {{ 'world' }}!"), "Hello world!");
  EXPECT_EQ(render("{{ n }}|{{ t }}|{{ f }}|{{ 1.0 }}|{{ 3 }}|{{ undefined_name }}|"),
            "None|True|1.5|1.0|3||");
  EXPECT_EQ(render("{{ d }}"), "{'a': 1, 'b': [1, 2]}");
  EXPECT_EQ(render("{{ [\"it's\", 'a\"b', 'a\\nb', (1,), none] }}"),
            R"(["it's", 'a"b', 'a\nb', (1,), None])");
  EXPECT_EQ(render("{{ 1e16 }} {{ 1e15 }} {{ 0.00001 }} {{ 0.1 + 0.2 }} {{ 10 / 4 }}"),
            "1e+16 1000000000000000.0 1e-05 0.30000000000000004 2.5");
  EXPECT_EQ(render("trailing newline dropped\n"), "trailing newline dropped");
  EXPECT_EQ(render("crlf\r\nnormalized"), "crlf\nnormalized");
}

TEST(ChatTemplate, WhitespaceControl) {
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  // trim_blocks drops the newline after a block tag, lstrip_blocks the indentation before it.
  EXPECT_EQ(render("  {% if true %}\n  x\n  {% endif %}\n  y"), "  x\n  y");
  EXPECT_EQ(render("line\n    {%+ if true %}keep{% endif %}"), "line\n    keep");
  EXPECT_EQ(render("{% if true +%}\nx{% endif %}"), "\nx");
  EXPECT_EQ(render("a\n{#- comment -#}\nb {# c #} d"), "ab  d");
  EXPECT_EQ(render("{{- 'x' -}}   \n  {{ 'y' }}"), "xy");
  EXPECT_EQ(render("{% raw %}{{ not rendered }}{% endraw %}"), "{{ not rendered }}");
  EXPECT_EQ(render("{% raw -%}   raw   {%- endraw %}"), "raw");
}

TEST(ChatTemplate, IfForLoop) {
  EXPECT_EQ(render("{% if false %}x{% elif n is none %}y{% else %}z{% endif %}"), "y");
  EXPECT_EQ(render("{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last "
                   "}}{{ loop.length }};"
                   "{% endfor %}"),
            "10TrueFalse3;21FalseFalse3;32FalseTrue3;");
  EXPECT_EQ(render("{% for x in xs %}{{ loop.previtem }}-{{ loop.nextitem }}-{{ loop.revindex "
                   "}}-{{ loop.cycle('a', "
                   "'b') }} {% endfor %}"),
            "-2-3-a 1-3-2-b 2--1-a ");
  EXPECT_EQ(
      render("{% for x in xs if x > 1 %}{{ loop.index }}/{{ loop.length }}:{{ x }} {% endfor %}"),
      "1/2:2 2/2:3 ");
  EXPECT_EQ(render("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}"), "a=1;b=[1, 2];");
  EXPECT_EQ(render("{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% endfor %}"),
            "13");
  EXPECT_EQ(render("{% for x in xs %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
            "1");
  EXPECT_EQ(render("{% for c in 'ab' %}{{ c }}.{% endfor %}{% for k in d %}{{ k }}{% endfor %}"),
            "a.b.ab");
}

TEST(ChatTemplate, ScopingAndSet) {
  // A set inside a loop body is local to the iteration; a set inside an if is not.
  EXPECT_EQ(
      render("{% set y = 1 %}{% for x in xs %}{% set y = y + x %}[{{ y }}]{% endfor %}{{ y }}"),
      "[2][3][4]1");
  EXPECT_EQ(render("{% if true %}{% set y = 5 %}{% endif %}{{ y }}"), "5");
  EXPECT_EQ(render("{% set ns = namespace(a=1, items=[]) %}{% for x in xs %}{% set ns.a = ns.a + x "
                   "%}{% endfor %}"
                   "{{ ns.a }} {{ ns }}"),
            "7 <Namespace {'a': 7, 'items': []}>");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = (3, 4) %}{{ c }}"), "12(3, 4)");
  EXPECT_EQ(render("{% set x %}block {{ 1 }}{% endset %}[{{ x }}]"), "[block 1]");
  EXPECT_EQ(render("{% set x | upper %}block{% endset %}[{{ x }}]"), "[BLOCK]");
  EXPECT_EQ(render("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a }}"), "3");
}

TEST(ChatTemplate, MacrosCallFilterBlocks) {
  EXPECT_EQ(render("{% macro m(a, b=2) %}{{ a }}-{{ b }}{% endmacro %}{{ m(1) }} {{ m(1, b=3) }} "
                   "{{ m(b=5, a=4) }}"),
            "1-2 1-3 4-5");
  EXPECT_EQ(
      render("{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, x=4) }}"),
      "1(2, 3){'x': 4}");
  EXPECT_EQ(render("{% macro m(a) %}[{{ caller(a * 2) }}]{% endmacro %}{% call(x) m(3) %}got {{ x "
                   "}}{% endcall %}"),
            "[got 6]");
  // Macros see the template's variables at call time, not the caller's loop variables.
  EXPECT_EQ(render("{% macro m() %}{{ z }}{{ q }}{% endmacro %}{% set z = 3 %}{% for q in xs %}{{ "
                   "m() }}{% endfor %}"),
            "333");
  EXPECT_EQ(render("{% filter upper %}hello {{ s }}{% endfilter %}"), "HELLO HÉLLO WÖRLD");
}

TEST(ChatTemplate, Expressions) {
  EXPECT_EQ(
      render(
          "{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 'a' ~ 1 ~ none }}"),
      "3 -4 2 1024 3.5 a1None");
  EXPECT_EQ(
      render("{{ 'yes' if t else 'no' }}|{{ 'x' if false }}|{{ 0 or '' or 'z' }}|{{ 1 and 0 }}"),
      "yes||z|0");
  EXPECT_EQ(render("{{ 1 == 1.0 }} {{ true == 1 }} {{ 'él' in s }} {{ 2 in xs }} {{ 'a' in d }} {{ "
                   "1 < 2 < 3 }}"),
            "True True True True True True");
  EXPECT_EQ(render("{{ s[1:3] }}|{{ s[::-1] }}|{{ xs[-1] }}|{{ xs[::2] }}|{{ xs[5:] }}"),
            "él|dlröw olléh|3|[1, 3]|[]");
  EXPECT_EQ(render("{{ nested.a.b.c[1].d }}{{ nested['a']['b']['c'][0] }}{{ msgs[0].role }}"),
            "x1user");
  EXPECT_EQ(render("{{ xs + [4] }} {{ 'ab' * 2 }} {{ (1, 2) + (3,) }} {{ -f }}"),
            "[1, 2, 3, 4] abab (1, 2, 3) -1.5");
  EXPECT_EQ(render("{{ '%s=%05.2f %d%%' % ('pi', 3.14159, 50) }}"), "pi=03.14 50%");
}

TEST(ChatTemplate, Tests) {
  EXPECT_EQ(
      render(
          "{{ x is defined }}{{ n is none }}{{ s is string }}{{ d is mapping }}{{ xs is sequence }}"
          "{{ xs is iterable }}{{ 1 is number }}{{ true is boolean }}{{ f is float }}{{ 3 is "
          "integer }}"),
      "FalseTrueTrueTrueTrueTrueTrueTrueTrueTrue");
  EXPECT_EQ(render("{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 'a' is in 'abc' }}{{ 2 "
                   "is eq 2 }}"
                   "{{ n is not none }}{{ 'abc' is lower }}"),
            "TrueTrueTrueTrueTrueFalseTrue");
}

TEST(ChatTemplate, Filters) {
  EXPECT_EQ(render("{{ d|tojson }} {{ 'é<>'|tojson }} {{ xs|tojson(separators=(',', ':')) }}"),
            R"({"a": 1, "b": [1, 2]} "é<>" [1,2,3])");
  EXPECT_EQ(render("{{ d|tojson(indent=2) }}"),
            "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ]\n}");
  EXPECT_EQ(
      render("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }} {{ 'é'|tojson(ensure_ascii=true) }}"),
      R"({"a": 2, "b": 1} "\u00e9")");
  EXPECT_EQ(render("{{ '  x  '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ xs|length }}|{{ xs|join(', ') "
                   "}}|{{ xs|first }}"
                   "{{ xs|last }}|{{ n|default('dflt') }}|{{ u|default('dflt') }}|{{ "
                   "''|default('e', true) }}"),
            "x|a|3|1, 2, 3|13|None|dflt|e");
  EXPECT_EQ(render("{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }}"
                   "{{ msgs|rejectattr('content')|list|length }}{{ xs|select('odd')|list }}{{ "
                   "xs|map('string')|join }}"),
            "['hi']1[1, 3]123");
  EXPECT_EQ(render("{{ 'abc'|replace('b', 'X') }}|{{ 'a\nb'|indent(2) }}|{{ 'x'|indent(2, true) "
                   "}}|{{ s|upper }}|"
                   "{{ 'hello world'|title }}|{{ 'hELLO'|capitalize }}"),
            "aXc|a\n  b|  x|HÉLLO WÖRLD|Hello World|Hello");
  EXPECT_EQ(render("{{ d|dictsort }}|{{ d|items|list }}|{{ ['b', 'A', 'a']|unique|list }}|{{ [3, "
                   "1, 2]|sort }}|"
                   "{{ xs|reverse|list }}|{{ xs|sum }}|{{ xs|max }}|{{ '12'|int + 1 }}|{{ "
                   "'2.5'|float }}|{{ -3|abs }}|"
                   "{{ 2.5|round }}|{{ 3.14159|round(2) }}|{{ 'a b  c'|wordcount }}|{{ "
                   "xs|batch(2)|list }}|{{ 5|string }}"),
            "[('a', 1), ('b', [1, 2])]|[('a', 1), ('b', [1, 2])]|['b', 'A']|[1, 2, 3]|[3, 2, "
            "1]|6|3|13|2.5|3|2.0|3.14|3|"
            "[[1, 2], [3]]|5");
  // Markup + str escapes the str (functionary's templates depend on it).
  EXPECT_EQ(render("{{ 'a'|safe + '<b>' }}"), "a&lt;b&gt;");
}

TEST(ChatTemplate, Methods) {
  EXPECT_EQ(
      render(
          "{{ ' a b '.strip() }}|{{ 'a,b'.split(',') }}|{{ ' a  b '.split() }}|{{ "
          "'xay'.strip('xy') }}|"
          "{{ 'abc'.startswith('a') }}|{{ 'abc'.endswith(('x', 'c')) }}|{{ 'Ab'.upper() }}{{ "
          "'Ab'.lower() }}|"
          "{{ 'a-b-c'.rsplit('-', 1) }}|{{ 'hello world'.title() }}|{{ 'abc'.replace('b', '') }}|"
          "{{ 'abc'.find('c') }}"),
      "a b|['a', 'b']|['a', 'b']|a|True|True|ABab|['a-b', 'c']|Hello World|ac|2");
  EXPECT_EQ(render("{{ d.get('a') }}{{ d.get('z') }}{{ d.get('z', 5) }}{{ d.keys()|list }}{{ "
                   "d.values()|list }}"
                   "{{ d.items()|list }}"),
            "1None5['a', 'b'][1, [1, 2]][('a', 1), ('b', [1, 2])]");
}

TEST(ChatTemplate, GlobalsAndStrftime) {
  EXPECT_EQ(render("{{ range(3)|list }}{{ range(1, 10, 3)|list }}{{ dict(a=1) }}"),
            "[0, 1, 2][1, 4, 7]{'a': 1}");
  EXPECT_EQ(render("{{ strftime_now('%Y-%m-%d %H:%M %A %B %-d') }}"),
            "2024-07-26 12:00 Friday July 26");
  RenderOptions other;
  other.now = *DateTime::parse_iso8601("2025-01-02T03:04:05");
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y %H:%M:%S') }}", default_context(), other),
            "02 Jan 2025 03:04:05");
  EXPECT_FALSE(DateTime::parse_iso8601("yesterday"));
}

// ---- errors: Python's exception class, its message, and the template position ----------

TEST(ChatTemplateErrors, RaiseException) {
  TemplateError e = error_of(
      "line one\n{% if true %}{{ raise_exception('System role not supported') }}{% endif %}");
  EXPECT_EQ(e.kind, TemplateErrorKind::kRaised);
  EXPECT_EQ(e.message, "System role not supported");
  EXPECT_EQ(e.line, 2);
  EXPECT_EQ(e.column, 17);
  EXPECT_EQ(e.to_string(), "TemplateError: System role not supported (template line 2, column 17)");
}

TEST(ChatTemplateErrors, PythonTypeErrors) {
  struct Case {
    const char* source;
    TemplateErrorKind kind;
    const char* message;
  };
  const Case cases[] = {
      {"{% for x in n %}{% endfor %}", TemplateErrorKind::kType,
       "'NoneType' object is not iterable"},
      {"{{ 'a' + 1 }}", TemplateErrorKind::kType, "can only concatenate str (not \"int\") to str"},
      {"{{ 1 + 'a' }}", TemplateErrorKind::kType,
       "unsupported operand type(s) for +: 'int' and 'str'"},
      {"{{ 1 < 'a' }}", TemplateErrorKind::kType,
       "'<' not supported between instances of 'int' and 'str'"},
      {"{{ xs|map('string')|tojson }}", TemplateErrorKind::kType,
       "Object of type generator is not JSON serializable"},
      {"{{ n|length }}", TemplateErrorKind::kType, "object of type 'NoneType' has no len()"},
      {"{{ x.y }}", TemplateErrorKind::kUndefined, "'x' is undefined"},
      {"{{ n.x.y }}", TemplateErrorKind::kUndefined, "'None' has no attribute 'x'"},
      {"{{ d.nope.deeper }}", TemplateErrorKind::kUndefined,
       "'dict object' has no attribute 'nope'"},
      {"{{ xs[10].a }}", TemplateErrorKind::kUndefined, "list object has no element 10"},
      {"{{ u + 1 }}", TemplateErrorKind::kUndefined, "'u' is undefined"},
      {"{{ 1 / 0 }}", TemplateErrorKind::kZeroDivision, "division by zero"},
      {"{% set a, b = [1] %}", TemplateErrorKind::kValue,
       "not enough values to unpack (expected 2, got 1)"},
      {"{% set x = 1 %}{% set x.a = 2 %}", TemplateErrorKind::kRuntime,
       "cannot assign attribute on non-namespace object"},
      {"{{ range(200000)|length }}", TemplateErrorKind::kOverflow,
       "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000)."},
  };
  for (const Case& c : cases) {
    TemplateError e = error_of(c.source);
    EXPECT_EQ(e.kind, c.kind) << c.source << ": " << e.to_string();
    EXPECT_EQ(e.message, c.message) << c.source;
    EXPECT_EQ(e.line, 1) << c.source;
    EXPECT_GT(e.column, 0) << c.source;
  }
}

TEST(ChatTemplateErrors, UndefinedIsLenient) {
  // Default Undefined: printing, iterating, testing and defaulting are fine.
  EXPECT_EQ(render("[{{ u }}]{% for x in u %}x{% endfor %}{{ u is defined }}{{ u|length }}{{ "
                   "u|default('d') }}"
                   "{{ d.nope is defined }}{{ xs[10] is defined }}"),
            "[]False0dFalseFalse");
}

TEST(ChatTemplateErrors, SyntaxErrorsNameLineAndColumn) {
  struct Case {
    const char* source;
    int line;
    int column;
    const char* message_part;
  };
  const Case cases[] = {
      {"ok\n{% if true %}\nno end", 3, 7,
       "Jinja was looking for the following tags: 'elif' or 'else' or 'endif'"},
      {"{{ 1 + }}", 1, 8, "unexpected 'end of print statement'"},
      {"a\n  {% foo %}", 2, 6, "Encountered unknown tag 'foo'."},
      {"{% do xs.append(1) %}", 1, 4, "Encountered unknown tag 'do'."},
      {"{{ x|nosuchfilter }}", 1, 6, "No filter named 'nosuchfilter'."},
      {"{{ x is nosuchtest }}", 1, 9, "No test named 'nosuchtest'."},
      {"{{ 'unterminated }}", 1, 4, "unexpected char"},
      {"{% endif %}", 1, 4, "Encountered unknown tag 'endif'."},
      {"{{ (1 }}", 1, 7, "unexpected '}', expected ')'"},
      {"{# never closed", 1, 1, "Missing end of comment tag"},
  };
  for (const Case& c : cases) {
    TemplateError e = error_of(c.source);
    EXPECT_EQ(e.kind, TemplateErrorKind::kSyntax) << c.source << ": " << e.to_string();
    EXPECT_NE(e.message.find(c.message_part), std::string::npos) << c.source << ": " << e.message;
    EXPECT_EQ(e.line, c.line) << c.source << ": " << e.to_string();
    EXPECT_EQ(e.column, c.column) << c.source << ": " << e.to_string();
  }
}

TEST(ChatTemplateErrors, StatusCarriesTheMessage) {
  auto t = Template::parse("{{ raise_exception('boom') }}");
  ASSERT_TRUE(t);
  auto out = t->render(ordered_json::object());
  ASSERT_FALSE(out);
  EXPECT_EQ(out.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(), "TemplateError: boom (template line 1, column 4)");
  auto bad = Template::parse("{% if %}");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.status().message().find("TemplateSyntaxError"), std::string::npos);
  EXPECT_FALSE(t->render(ordered_json::array()));  // the context must be an object
}

// ---- sandbox ---------------------------------------------------------------------------

TEST(ChatTemplateSandbox, MutatorsRaiseSecurityError) {
  for (const char* source : {"{{ xs.append(4) }}", "{% set _ = xs.pop() %}", "{{ d.update({}) }}",
                             "{% set _ = msgs.insert(0, 1) %}", "{{ d.clear() }}"}) {
    TemplateError e = error_of(source);
    EXPECT_EQ(e.kind, TemplateErrorKind::kSecurity) << source << ": " << e.to_string();
  }
  EXPECT_EQ(error_of("{{ xs.append(4) }}").message,
            "access to attribute 'append' of 'list' object is unsafe.");
  EXPECT_EQ(error_of("{{ ''.__class__.__mro__ }}").kind, TemplateErrorKind::kSecurity);
  // Reading attributes is fine, and a mutator only raises when used.
  EXPECT_EQ(render("{{ xs.append is defined }}{{ xs.index(2) }}{{ xs.count(1) }}"), "False11");
}

TEST(ChatTemplateSandbox, NoLoaderNoEnvironment) {
  EXPECT_EQ(error_of("{% include 'x.jinja' %}").kind, TemplateErrorKind::kUnsupported);
  EXPECT_EQ(error_of("{% extends 'base' %}").kind, TemplateErrorKind::kUnsupported);
  // Nothing of the process leaks in: unknown names are undefined.
  EXPECT_EQ(render("{{ environ }}{{ os }}{{ self }}{{ config }}"), "");
}

// ---- limits ----------------------------------------------------------------------------

TEST(ChatTemplateLimits, InfiniteMacroRecursion) {
  TemplateError e = error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_EQ(e.kind, TemplateErrorKind::kLimit);
  EXPECT_NE(e.message.find("recursion"), std::string::npos);
  EXPECT_EQ(
      error_of(
          "{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}")
          .kind,
      TemplateErrorKind::kLimit);
}

TEST(ChatTemplateLimits, HugeLoops) {
  RenderOptions o = fixed_clock();
  o.max_steps = 100000;
  TemplateError e =
      error_of("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
               default_context(), o);
  EXPECT_EQ(e.kind, TemplateErrorKind::kLimit);
  EXPECT_EQ(e.line, 1);
}

TEST(ChatTemplateLimits, OutputAndValueSize) {
  RenderOptions o = fixed_clock();
  o.max_output_bytes = 1000;
  EXPECT_EQ(error_of("{% for i in range(2000) %}x{% endfor %}", default_context(), o).kind,
            TemplateErrorKind::kLimit);
  EXPECT_EQ(error_of("{{ 'x' * 1000000000 }}").kind, TemplateErrorKind::kLimit);
  EXPECT_EQ(error_of("{% set ns = namespace(s='x') %}{% for i in range(80) %}{% set ns.s = ns.s ~ "
                     "ns.s %}{% endfor %}")
                .kind,
            TemplateErrorKind::kLimit);
  EXPECT_EQ(error_of("{{ 2 ** 64 }}").kind, TemplateErrorKind::kOverflow);
}

TEST(ChatTemplateLimits, DeepNestingIsASyntaxError) {
  std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_EQ(error_of(deep).kind, TemplateErrorKind::kSyntax);
  std::string blocks;
  for (int i = 0; i < 1000; ++i) blocks += "{% if true %}";
  EXPECT_EQ(error_of(blocks).kind, TemplateErrorKind::kSyntax);
  std::string nots = "{{ " + [] {
    std::string s;
    for (int i = 0; i < 5000; ++i) s += "not ";
    return s;
  }() + "1 }}";
  EXPECT_EQ(error_of(nots).kind, TemplateErrorKind::kSyntax);
}

}  // namespace
}  // namespace loupe::chat
