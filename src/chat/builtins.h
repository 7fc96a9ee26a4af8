// jinja2's builtin filters and tests, Python's str/dict/list methods as the sandbox exposes
// them, and the template globals (range, namespace, dict, joiner, raise_exception, strftime_now).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "chat/value.h"

namespace loupe::chat {

using FilterFn = Value (*)(Interpreter&, const Value&, CallArgs&);
using TestFn = bool (*)(Interpreter&, const Value&, CallArgs&);

FilterFn find_filter(std::string_view name);  // nullptr when jinja2 has no such filter
TestFn find_test(std::string_view name);

// obj.name for the methods of Python's str, dict and list (bound to obj); nullopt when the type
// has no such attribute. Mutators (list.append, dict.update, ...) come back as an undefined that
// raises SecurityError when used, as in ImmutableSandboxedEnvironment.
std::optional<Value> builtin_attribute(const Value& obj, const std::string& name);

std::unordered_map<std::string, Value> make_globals(const RenderOptions& options);

// Python's `format % args`.
std::string percent_format(const std::string& format, const Value& args);

}  // namespace loupe::chat
