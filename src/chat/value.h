// The values a template computes with, and the Python semantics of each operation on them:
// truthiness, str()/repr(), ==, ordering, iteration, len(), json.dumps.
//
// Internally the engine reports template errors by throwing TemplateException; Template::parse
// and Template::render catch it at the module boundary and return a Status. Nothing else throws
// past that boundary.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/template.h"

namespace loupe::chat {

struct TemplateException {
  TemplateErrorKind kind;
  std::string message;
  int line = 0;
  int column = 0;
};

[[noreturn]] void raise_error(TemplateErrorKind kind, std::string message);
[[noreturn]] inline void type_error(std::string message) {
  raise_error(TemplateErrorKind::kType, std::move(message));
}

struct Value;
class Interpreter;
using List = std::vector<Value>;

// Arguments of a call: positional, then keyword (in call order).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keywords;
};

using NativeFn = std::function<Value(Interpreter&, CallArgs&)>;

struct Callable {
  std::string name;       // for messages and repr
  std::string type_name;  // Python's type name: "function", "builtin_function_or_method", "Macro"
  NativeFn fn;
};

// Generators (map, select, items...), dict views and ranges. Generators are consumed by
// iteration like Python's; views and ranges can be iterated again.
struct IteratorData {
  // Python generators run lazily: a filter's work (and its errors) happens on first use.
  std::function<List()> producer;
  List items;
  size_t pos = 0;
  bool reiterable = false;  // dict_items/dict_keys/dict_values/range
  bool has_len = false;
  std::string type_name;  // "generator", "dict_items", "range", ...
  std::string repr;       // what str() prints
};

struct Dict;
struct LoopData;

// Runs a lazy generator's producer once, filling items.
void materialize(IteratorData& it);

struct UndefinedData {
  std::string message;    // the UndefinedError message raised when the value is used
  bool security = false;  // raise SecurityError instead (an unsafe attribute)
};

struct Value {
  enum class Type : uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kIterator,
    kCallable,
    kNamespace,
    kLoop
  };

  Type type = Type::kUndefined;
  bool tuple = false;  // kList: a Python tuple
  bool markup =
      false;  // kString: markupsafe.Markup (|safe, |escape): `+` and `%` escape plain str operands
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<void>
      ptr;  // List, Dict, IteratorData, Callable, Dict (namespace), LoopData, UndefinedData

  Value() = default;
  static Value undefined(std::string message, bool security = false);
  static Value none();
  static Value boolean(bool v);
  static Value integer(int64_t v);
  static Value number(double v);
  static Value string(std::string v);
  static Value markup_string(std::string v);
  static Value list(List items, bool tuple = false);
  static Value dict(Dict d);
  static Value iterator(IteratorData d);
  static Value callable(std::string name, std::string type_name, NativeFn fn);
  static Value namespace_(Dict attrs);
  static Value loop(std::shared_ptr<LoopData> data);
  static Value from_json(const nlohmann::ordered_json& j);

  bool is_undefined() const { return type == Type::kUndefined; }
  bool is_none() const { return type == Type::kNone; }
  bool is_string() const { return type == Type::kString; }
  bool is_int() const {
    return type == Type::kInt || type == Type::kBool;
  }  // bool is an int in Python
  bool is_number() const { return is_int() || type == Type::kFloat; }
  bool is_list() const { return type == Type::kList; }
  bool is_dict() const { return type == Type::kDict; }

  int64_t as_int() const { return type == Type::kBool ? (b ? 1 : 0) : i; }
  double as_double() const { return type == Type::kFloat ? f : static_cast<double>(as_int()); }
  const List& items() const { return *static_cast<const List*>(ptr.get()); }
  const Dict& dict_data() const { return *static_cast<const Dict*>(ptr.get()); }
  Dict& namespace_data() const { return *static_cast<Dict*>(ptr.get()); }
  IteratorData& iterator_data() const { return *static_cast<IteratorData*>(ptr.get()); }
  const Callable& callable_data() const { return *static_cast<const Callable*>(ptr.get()); }
  LoopData& loop_data() const { return *static_cast<LoopData*>(ptr.get()); }
  const UndefinedData& undefined_data() const {
    return *static_cast<const UndefinedData*>(ptr.get());
  }
};

// Insertion-ordered mapping with Python key equality (1 == 1.0 == True).
struct Dict {
  std::vector<std::pair<Value, Value>> entries;
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);
};

// The state behind `loop` in a for body.
struct LoopData {
  std::shared_ptr<const List> items;
  size_t index0 = 0;
  int depth0 = 0;
  std::vector<Value> last_changed;
  bool has_changed = false;
};

// Raises UndefinedError (or SecurityError) with the undefined value's message.
[[noreturn]] void fail_undefined(const Value& v);

std::string type_name(const Value& v);         // type(v).__name__
std::string object_type_repr(const Value& v);  // jinja2's "dict object", "None", ...
bool truthy(const Value& v);
std::string to_str(const Value& v);  // str(v); undefined prints as ""
std::string repr(const Value& v);
bool equals(const Value& a, const Value& b);
// Python's ordering; raises TypeError "'<' not supported between instances of ..." like Python.
int compare(const Value& a, const Value& b, const char* op);
// Materializes iteration (consuming generators); TypeError for what Python cannot iterate.
List iterate(const Value& v);
// len(v), TypeError for what has no len().
int64_t length(const Value& v);
// `needle in haystack`.
bool contains(const Value& haystack, const Value& needle);

struct JsonOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // json.dumps indent; unset = one line
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
// json.dumps(v); TypeError "Object of type X is not JSON serializable" like Python.
std::string to_json(const Value& v, const JsonOptions& options);

// markupsafe.escape of a str: & < > " ' as entities.
std::string html_escape(const std::string& s);

}  // namespace loupe::chat
