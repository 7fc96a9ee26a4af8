// A sandboxed Jinja2 engine for Hugging Face chat templates.
//
// Semantics follow Python's jinja2 3.1 in the environment `transformers` renders chat templates
// with: ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, loopcontrols), plus
// the globals raise_exception and strftime_now and a json.dumps-based tojson filter. Values follow
// Python: str(1.0) == "1.0", dict reprs use single quotes, `map`/`select` are lazy generators,
// list/dict mutators raise SecurityError. A template error is reported with its Python exception
// class name, its message and the template line and column; rendering never crashes and is
// bounded in loop iterations, call depth and output size. There is no file, process or
// environment access: include/import/extends are refused.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace loupe::chat {

// What went wrong, named after the Python exception jinja2 raises in the same place.
enum class TemplateErrorKind {
  kSyntax,          // TemplateSyntaxError: the template does not parse
  kUndefined,       // UndefinedError: attribute of an undefined value, arithmetic on one, ...
  kType,            // TypeError: iterating none, str + int, tojson of a generator, ...
  kValue,           // ValueError: unpacking the wrong number of values, bad format strings
  kZeroDivision,    // ZeroDivisionError
  kOverflow,        // OverflowError: range() larger than the sandbox allows, 64-bit overflow
  kRaised,          // TemplateError: the template called raise_exception(message)
  kSecurity,        // SecurityError: list.append and other mutators in the immutable sandbox
  kRuntime,         // TemplateRuntimeError: assigning an attribute of a non-namespace, ...
  kFilterArgument,  // FilterArgumentError
  kLimit,           // a resource limit of this engine: loop steps, call depth, output size
  kUnsupported,     // valid Jinja that this engine does not implement (include, extends, ...)
  kCount
};

// Python's class name of the exception ("TypeError"); "LimitExceeded" and "Unsupported" for
// the two kinds that have no jinja2 counterpart.
const char* template_error_kind_name(TemplateErrorKind kind);

struct TemplateError {
  TemplateErrorKind kind = TemplateErrorKind::kSyntax;
  std::string
      message;   // Python's message where jinja2 has one, e.g. "'NoneType' object is not iterable"
  int line = 0;  // 1-based position in the template source; 0 when unknown
  int column = 0;

  // "TypeError: 'NoneType' object is not iterable (template line 3, column 12)"
  std::string to_string() const;
};

struct TemplateOptions {
  bool trim_blocks = true;             // drop the first newline after a block tag
  bool lstrip_blocks = true;           // strip whitespace before a block tag on its line
  bool keep_trailing_newline = false;  // jinja2's default drops one trailing newline
  int max_nesting = 200;               // parser nesting (expressions and blocks)
};

// A wall-clock time for strftime_now, local time like Python's datetime.now().
struct DateTime {
  int year = 1970, month = 1, day = 1, hour = 0, minute = 0, second = 0;
  // "2024-07-26", "2024-07-26T12:00", "2024-07-26 12:00:00" (a trailing Z or offset is ignored).
  static std::optional<DateTime> parse_iso8601(std::string_view text);
  static DateTime now();
};

struct RenderOptions {
  std::optional<DateTime> now;                 // strftime_now's clock; unset = the system clock
  size_t max_output_bytes = size_t{64} << 20;  // also bounds every string and list built
  int64_t max_steps = 5'000'000;               // loop iterations and elements processed by filters
  int max_call_depth = 100;                    // macro recursion (Python's own limit is near this)
};

struct Program;

class Template {
 public:
  // Parses `source`; on failure the Status message is TemplateError::to_string() and `error`
  // (when given) receives the details.
  static Expected<Template> parse(std::string_view source, const TemplateOptions& options = {},
                                  TemplateError* error = nullptr);

  // Renders with `context`, a JSON object (messages, tools, add_generation_prompt, bos_token...).
  // JSON objects become dicts in insertion order, arrays lists, numbers int or float as in
  // Python's json.loads. Errors as in parse().
  Expected<std::string> render(const nlohmann::ordered_json& context,
                               const RenderOptions& options = {},
                               TemplateError* error = nullptr) const;

 private:
  explicit Template(std::shared_ptr<const Program> program) : program_(std::move(program)) {}
  std::shared_ptr<const Program> program_;
};

}  // namespace loupe::chat
