#include "chat/template.h"

#include <ctime>

#include "chat/builtins.h"
#include "chat/interpreter.h"
#include "chat/parser.h"

namespace loupe::chat {

const char* template_error_kind_name(TemplateErrorKind kind) {
  switch (kind) {
    case TemplateErrorKind::kSyntax:
      return "TemplateSyntaxError";
    case TemplateErrorKind::kUndefined:
      return "UndefinedError";
    case TemplateErrorKind::kType:
      return "TypeError";
    case TemplateErrorKind::kValue:
      return "ValueError";
    case TemplateErrorKind::kZeroDivision:
      return "ZeroDivisionError";
    case TemplateErrorKind::kOverflow:
      return "OverflowError";
    case TemplateErrorKind::kRaised:
      return "TemplateError";
    case TemplateErrorKind::kSecurity:
      return "SecurityError";
    case TemplateErrorKind::kRuntime:
      return "TemplateRuntimeError";
    case TemplateErrorKind::kFilterArgument:
      return "FilterArgumentError";
    case TemplateErrorKind::kLimit:
      return "LimitExceeded";
    case TemplateErrorKind::kUnsupported:
      return "Unsupported";
    case TemplateErrorKind::kCount:
      break;
  }
  return "Error";
}

std::string TemplateError::to_string() const {
  std::string s = fmt::format("{}: {}", template_error_kind_name(kind), message);
  if (line > 0) s += fmt::format(" (template line {}, column {})", line, column);
  return s;
}

std::optional<DateTime> DateTime::parse_iso8601(std::string_view text) {
  DateTime t;
  std::string s(text);
  int n = 0;
  char sep = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%n", &t.year, &t.month, &t.day, &n) != 3 || n != 10)
    return std::nullopt;
  size_t pos = 10;
  if (pos < s.size()) {
    sep = s[pos];
    if (sep != 'T' && sep != 't' && sep != ' ') return std::nullopt;
    int m = 0;
    if (std::sscanf(s.c_str() + pos + 1, "%2d:%2d%n", &t.hour, &t.minute, &m) != 2 || m != 5)
      return std::nullopt;
    pos += 1 + 5;
    if (pos < s.size() && s[pos] == ':') {
      if (std::sscanf(s.c_str() + pos + 1, "%2d%n", &t.second, &m) != 1 || m != 2)
        return std::nullopt;
      pos += 3;
    }
    if (pos < s.size() && s[pos] == '.')  // fractional seconds: strftime_now has no use for them
      for (++pos; pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]));) ++pos;
    // A zone suffix (Z, +02:00) is accepted and ignored: the template sees wall-clock time.
    if (pos < s.size() && s[pos] != 'Z' && s[pos] != 'z' && s[pos] != '+' && s[pos] != '-')
      return std::nullopt;
  }
  if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > 31 || t.hour > 23 || t.minute > 59 ||
      t.second > 60)
    return std::nullopt;
  return t;
}

DateTime DateTime::now() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  return DateTime{tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec};
}

namespace {

Status to_status(const TemplateException& e, TemplateError* error) {
  TemplateError te{e.kind, e.message, e.line, e.column};
  if (error) *error = te;
  ErrorCode code = e.kind == TemplateErrorKind::kLimit         ? ErrorCode::kOutOfRange
                   : e.kind == TemplateErrorKind::kUnsupported ? ErrorCode::kUnsupported
                                                               : ErrorCode::kInvalidArgument;
  return Status(code, te.to_string());
}

// jinja2 resolves filter and test names when it compiles a template: unknown ones fail parsing.
void check_names(const Expr* e) {
  if (e == nullptr) return;
  if (e->kind == ExprKind::kFilter && find_filter(e->name) == nullptr)
    throw TemplateException{TemplateErrorKind::kSyntax,
                            fmt::format("No filter named '{}'.", e->name), e->line, e->column};
  if (e->kind == ExprKind::kTest && find_test(e->name) == nullptr)
    throw TemplateException{TemplateErrorKind::kSyntax, fmt::format("No test named '{}'.", e->name),
                            e->line, e->column};
  for (const auto& c : e->children) check_names(c.get());
  for (const auto& kv : e->kwargs) check_names(kv.second.get());
}

void check_names(const std::vector<StmtPtr>& body) {
  for (const auto& s : body) {
    check_names(s->expr.get());
    check_names(s->target.get());
    check_names(s->cond.get());
    for (const auto& d : s->defaults) check_names(d.get());
    for (const auto& a : s->assignments) check_names(a.second.get());
    check_names(s->body);
    check_names(s->else_body);
  }
}

}  // namespace

Expected<Template> Template::parse(std::string_view source, const TemplateOptions& options,
                                   TemplateError* error) {
  try {
    std::shared_ptr<Program> program = parse_program(source, options);
    check_names(program->body);
    return Template(std::move(program));
  } catch (const TemplateException& e) {
    return to_status(e, error);
  }
}

Expected<std::string> Template::render(const nlohmann::ordered_json& context,
                                       const RenderOptions& options, TemplateError* error) const {
  if (!context.is_object() && !context.is_null())
    return make_error(ErrorCode::kInvalidArgument, "template context must be a JSON object, got {}",
                      context.type_name());
  try {
    Value ctx = context.is_null() ? Value::dict(Dict{}) : Value::from_json(context);
    Interpreter interpreter(program_, options);
    return interpreter.render(ctx);
  } catch (const TemplateException& e) {
    return to_status(e, error);
  } catch (const std::bad_alloc&) {
    TemplateException e{TemplateErrorKind::kLimit, "out of memory while rendering"};
    return to_status(e, error);
  }
}

}  // namespace loupe::chat
