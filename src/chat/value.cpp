#include "chat/value.h"

#include <algorithm>
#include <cmath>

#include "chat/pystr.h"

namespace loupe::chat {

void materialize(IteratorData& it) {
  if (it.producer) {
    std::function<List()> producer = std::move(it.producer);
    it.producer = nullptr;
    it.items = producer();
  }
}

void raise_error(TemplateErrorKind kind, std::string message) {
  throw TemplateException{kind, std::move(message)};
}

void fail_undefined(const Value& v) {
  const UndefinedData& u = v.undefined_data();
  raise_error(u.security ? TemplateErrorKind::kSecurity : TemplateErrorKind::kUndefined, u.message);
}

Value Value::undefined(std::string message, bool security) {
  Value v;
  v.ptr = std::make_shared<UndefinedData>(UndefinedData{std::move(message), security});
  return v;
}
Value Value::none() {
  Value v;
  v.type = Type::kNone;
  return v;
}
Value Value::boolean(bool x) {
  Value v;
  v.type = Type::kBool;
  v.b = x;
  return v;
}
Value Value::integer(int64_t x) {
  Value v;
  v.type = Type::kInt;
  v.i = x;
  return v;
}
Value Value::number(double x) {
  Value v;
  v.type = Type::kFloat;
  v.f = x;
  return v;
}
Value Value::string(std::string x) {
  Value v;
  v.type = Type::kString;
  v.s = std::move(x);
  return v;
}
Value Value::markup_string(std::string x) {
  Value v = string(std::move(x));
  v.markup = true;
  return v;
}
Value Value::list(List items, bool tuple) {
  Value v;
  v.type = Type::kList;
  v.tuple = tuple;
  v.ptr = std::make_shared<List>(std::move(items));
  return v;
}
Value Value::dict(Dict d) {
  Value v;
  v.type = Type::kDict;
  v.ptr = std::make_shared<Dict>(std::move(d));
  return v;
}
Value Value::iterator(IteratorData d) {
  Value v;
  v.type = Type::kIterator;
  v.ptr = std::make_shared<IteratorData>(std::move(d));
  return v;
}
Value Value::callable(std::string name, std::string type_name, NativeFn fn) {
  Value v;
  v.type = Type::kCallable;
  v.ptr =
      std::make_shared<Callable>(Callable{std::move(name), std::move(type_name), std::move(fn)});
  return v;
}
Value Value::namespace_(Dict attrs) {
  Value v;
  v.type = Type::kNamespace;
  v.ptr = std::make_shared<Dict>(std::move(attrs));
  return v;
}
Value Value::loop(std::shared_ptr<LoopData> data) {
  Value v;
  v.type = Type::kLoop;
  v.ptr = std::move(data);
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      d.entries.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it)
        d.entries.emplace_back(string(it.key()), from_json(it.value()));
      return dict(std::move(d));
    }
    case nlohmann::ordered_json::value_t::array: {
      List l;
      l.reserve(j.size());
      for (const auto& e : j) l.push_back(from_json(e));
      return list(std::move(l));
    }
    case nlohmann::ordered_json::value_t::string:
      return string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::boolean:
      return boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return integer(static_cast<int64_t>(u));
      return number(static_cast<double>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return number(j.get<double>());
    default:
      return none();
  }
}

const Value* Dict::find(const Value& key) const {
  for (const auto& [k, v] : entries)
    if (equals(k, key)) return &v;
  return nullptr;
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k.type == Value::Type::kString && k.s == key) return &v;
  return nullptr;
}

void Dict::set(Value key, Value value) {
  for (auto& [k, v] : entries) {
    if (equals(k, key)) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

std::string type_name(const Value& v) {
  using T = Value::Type;
  switch (v.type) {
    case T::kUndefined:
      return "Undefined";
    case T::kNone:
      return "NoneType";
    case T::kBool:
      return "bool";
    case T::kInt:
      return "int";
    case T::kFloat:
      return "float";
    case T::kString:
      return v.markup ? "Markup" : "str";
    case T::kList:
      return v.tuple ? "tuple" : "list";
    case T::kDict:
      return "dict";
    case T::kIterator:
      return v.iterator_data().type_name;
    case T::kCallable:
      return v.callable_data().type_name;
    case T::kNamespace:
      return "Namespace";
    case T::kLoop:
      return "LoopContext";
  }
  return "object";
}

std::string object_type_repr(const Value& v) {
  using T = Value::Type;
  switch (v.type) {
    case T::kNone:
      return "None";
    case T::kUndefined:
      return "jinja2.runtime.Undefined object";
    case T::kNamespace:
      return "jinja2.utils.Namespace object";
    case T::kLoop:
      return "jinja2.runtime.LoopContext object";
    case T::kCallable:
      if (v.callable_data().type_name == "Macro") return "jinja2.runtime.Macro object";
      break;
    default:
      break;
  }
  return type_name(v) + " object";
}

bool truthy(const Value& v) {
  using T = Value::Type;
  switch (v.type) {
    case T::kUndefined:
    case T::kNone:
      return false;
    case T::kBool:
      return v.b;
    case T::kInt:
      return v.i != 0;
    case T::kFloat:
      return v.f != 0;
    case T::kString:
      return !v.s.empty();
    case T::kList:
      return !v.items().empty();
    case T::kDict:
      return !v.dict_data().entries.empty();
    case T::kIterator: {
      const IteratorData& it = v.iterator_data();
      return it.has_len ? !it.items.empty() : true;
    }
    default:
      return true;
  }
}

namespace {

std::string seq_str(const Value& v) {
  const List& items = v.items();
  std::string out = v.tuple ? "(" : "[";
  for (size_t k = 0; k < items.size(); ++k) {
    if (k) out += ", ";
    out += repr(items[k]);
  }
  if (v.tuple && items.size() == 1) out += ",";
  out += v.tuple ? ")" : "]";
  return out;
}

std::string dict_str(const Dict& d) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, val] : d.entries) {
    if (!first) out += ", ";
    first = false;
    out += repr(k) + ": " + repr(val);
  }
  return out + "}";
}

}  // namespace

std::string to_str(const Value& v) {
  using T = Value::Type;
  switch (v.type) {
    case T::kUndefined:
      return "";
    case T::kNone:
      return "None";
    case T::kBool:
      return v.b ? "True" : "False";
    case T::kInt:
      return std::to_string(v.i);
    case T::kFloat:
      return py::float_repr(v.f);
    case T::kString:
      return v.s;
    case T::kList:
      return seq_str(v);
    case T::kDict:
      return dict_str(v.dict_data());
    case T::kIterator:
      return v.iterator_data().repr;
    case T::kCallable: {
      const Callable& c = v.callable_data();
      if (c.type_name == "Macro") return "<Macro '" + c.name + "'>";
      if (c.type_name == "function") return "<function " + c.name + ">";
      return "<built-in method " + c.name + ">";
    }
    case T::kNamespace:
      return "<Namespace " + dict_str(v.namespace_data()) + ">";
    case T::kLoop: {
      const LoopData& l = v.loop_data();
      return "<LoopContext " + std::to_string(l.index0 + 1) + "/" +
             std::to_string(l.items->size()) + ">";
    }
  }
  return "";
}

std::string repr(const Value& v) {
  if (v.type == Value::Type::kString)
    return v.markup ? "Markup(" + py::repr(v.s) + ")" : py::repr(v.s);
  if (v.type == Value::Type::kUndefined) return "Undefined";
  return to_str(v);
}

bool equals(const Value& a, const Value& b) {
  using T = Value::Type;
  if (a.is_number() && b.is_number()) {
    if (a.type == T::kFloat || b.type == T::kFloat) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.type != b.type) return false;
  switch (a.type) {
    case T::kUndefined:
    case T::kNone:
      return true;
    case T::kString:
      return a.s == b.s;
    case T::kList: {
      if (a.tuple != b.tuple) return false;
      const List &x = a.items(), &y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t k = 0; k < x.size(); ++k)
        if (!equals(x[k], y[k])) return false;
      return true;
    }
    case T::kDict: {
      const Dict &x = a.dict_data(), &y = b.dict_data();
      if (x.entries.size() != y.entries.size()) return false;
      for (const auto& [k, val] : x.entries) {
        const Value* o = y.find(k);
        if (o == nullptr || !equals(val, *o)) return false;
      }
      return true;
    }
    default:
      return a.ptr == b.ptr;
  }
}

int compare(const Value& a, const Value& b, const char* op) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (a.is_number() && b.is_number()) {
    if (a.type == Value::Type::kFloat || b.type == Value::Type::kFloat) {
      double x = a.as_double(), y = b.as_double();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    int c = a.s.compare(b.s);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.tuple == b.tuple) {
    const List &x = a.items(), &y = b.items();
    for (size_t k = 0; k < x.size() && k < y.size(); ++k)
      if (!equals(x[k], y[k])) return compare(x[k], y[k], op);
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  type_error(fmt::format("'{}' not supported between instances of '{}' and '{}'", op, type_name(a),
                         type_name(b)));
}

List iterate(const Value& v) {
  using T = Value::Type;
  switch (v.type) {
    case T::kUndefined:
      return {};
    case T::kString: {
      List out;
      if (py::is_ascii(v.s)) {
        for (char c : v.s) out.push_back(Value::string(std::string(1, c)));
      } else {
        for (char32_t c : py::decode(v.s)) {
          std::string s;
          py::append_utf8(s, c);
          out.push_back(Value::string(std::move(s)));
        }
      }
      return out;
    }
    case T::kList:
      return v.items();
    case T::kDict: {
      List out;
      for (const auto& e : v.dict_data().entries) out.push_back(e.first);
      return out;
    }
    case T::kIterator: {
      IteratorData& it = v.iterator_data();
      materialize(it);
      if (it.reiterable) return it.items;
      List out(it.items.begin() + static_cast<std::ptrdiff_t>(std::min(it.pos, it.items.size())),
               it.items.end());
      it.pos = it.items.size();
      return out;
    }
    default:
      type_error(fmt::format("'{}' object is not iterable", type_name(v)));
  }
}

int64_t length(const Value& v) {
  using T = Value::Type;
  switch (v.type) {
    case T::kUndefined:
      return 0;
    case T::kString:
      return static_cast<int64_t>(py::length(v.s));
    case T::kList:
      return static_cast<int64_t>(v.items().size());
    case T::kDict:
      return static_cast<int64_t>(v.dict_data().entries.size());
    case T::kIterator:
      if (v.iterator_data().has_len) return static_cast<int64_t>(v.iterator_data().items.size());
      break;
    default:
      break;
  }
  type_error(fmt::format("object of type '{}' has no len()", type_name(v)));
}

bool contains(const Value& haystack, const Value& needle) {
  using T = Value::Type;
  switch (haystack.type) {
    case T::kUndefined:
      return false;
    case T::kString:
      if (!needle.is_string())
        type_error(fmt::format("'in <string>' requires string as left operand, not {}",
                               type_name(needle)));
      return haystack.s.find(needle.s) != std::string::npos;
    case T::kList:
      for (const Value& e : haystack.items())
        if (equals(e, needle)) return true;
      return false;
    case T::kDict:
      if ((needle.is_list() && !needle.tuple) || needle.is_dict())
        type_error(fmt::format("unhashable type: '{}'", type_name(needle)));
      return haystack.dict_data().find(needle) != nullptr;
    case T::kIterator: {
      IteratorData& it = haystack.iterator_data();
      materialize(it);
      if (it.reiterable) {
        for (const Value& e : it.items)
          if (equals(e, needle)) return true;
        return false;
      }
      while (it.pos < it.items.size())
        if (equals(it.items[it.pos++], needle)) return true;
      return false;
    }
    default:
      type_error(fmt::format("argument of type '{}' is not iterable", type_name(haystack)));
  }
}

namespace {

void json_append(std::string& out, const Value& v, const JsonOptions& o, int level) {
  using T = Value::Type;
  auto newline = [&](int lvl) {
    out += '\n';
    for (int k = 0; k < lvl; ++k) out += *o.indent;
  };
  switch (v.type) {
    case T::kNone:
      out += "null";
      return;
    case T::kBool:
      out += v.b ? "true" : "false";
      return;
    case T::kInt:
      out += std::to_string(v.i);
      return;
    case T::kFloat:
      if (std::isnan(v.f)) {
        out += "NaN";
      } else if (std::isinf(v.f)) {
        out += v.f > 0 ? "Infinity" : "-Infinity";
      } else {
        out += py::float_repr(v.f);
      }
      return;
    case T::kString:
      out += py::json_quote(v.s, o.ensure_ascii);
      return;
    case T::kList: {
      const List& items = v.items();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t k = 0; k < items.size(); ++k) {
        if (k) out += o.item_separator;
        if (o.indent) newline(level + 1);
        json_append(out, items[k], o, level + 1);
      }
      if (o.indent) newline(level);
      out += ']';
      return;
    }
    case T::kDict: {
      const Dict& d = v.dict_data();
      if (d.entries.empty()) {
        out += "{}";
        return;
      }
      std::vector<std::pair<std::string, const Value*>> keyed;
      for (const auto& [k, val] : d.entries) {
        std::string key;
        switch (k.type) {
          case T::kString:
            key = k.s;
            break;
          case T::kNone:
            key = "null";
            break;
          case T::kBool:
            key = k.b ? "true" : "false";
            break;
          case T::kInt:
            key = std::to_string(k.i);
            break;
          case T::kFloat:
            key = py::float_repr(k.f);
            break;
          default:
            type_error(
                fmt::format("keys must be str, int, float, bool or None, not {}", type_name(k)));
        }
        keyed.emplace_back(std::move(key), &val);
      }
      if (o.sort_keys)
        std::stable_sort(keyed.begin(), keyed.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
      out += '{';
      for (size_t k = 0; k < keyed.size(); ++k) {
        if (k) out += o.item_separator;
        if (o.indent) newline(level + 1);
        out += py::json_quote(keyed[k].first, o.ensure_ascii);
        out += o.key_separator;
        json_append(out, *keyed[k].second, o, level + 1);
      }
      if (o.indent) newline(level);
      out += '}';
      return;
    }
    default:
      type_error(fmt::format("Object of type {} is not JSON serializable", type_name(v)));
  }
}

}  // namespace

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string to_json(const Value& v, const JsonOptions& options) {
  std::string out;
  json_append(out, v, options, 0);
  return out;
}

}  // namespace loupe::chat
