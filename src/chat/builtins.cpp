#include "chat/builtins.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>

#include "chat/interpreter.h"
#include "chat/pystr.h"

namespace loupe::chat {
namespace {

// Binds call arguments to a Python signature: positional first, then keywords by name.
class Args {
 public:
  Args(const std::string& fname, CallArgs& a, std::initializer_list<const char*> names,
       size_t n_required = 0)
      : names_(names), vals_(names.size(), nullptr) {
    if (a.positional.size() > names_.size())
      type_error(fmt::format("{}() takes at most {} argument(s) ({} given)", fname, names_.size(),
                             a.positional.size()));
    for (size_t k = 0; k < a.positional.size(); ++k) vals_[k] = &a.positional[k];
    for (auto& kw : a.keywords) {
      const std::string& key = kw.first;
      Value& v = kw.second;
      size_t idx =
          std::find_if(names_.begin(), names_.end(), [&](const char* n) { return key == n; }) -
          names_.begin();
      if (idx == names_.size())
        type_error(fmt::format("{}() got an unexpected keyword argument '{}'", fname, key));
      if (vals_[idx])
        type_error(fmt::format("{}() got multiple values for argument '{}'", fname, key));
      vals_[idx] = &v;
    }
    for (size_t k = 0; k < n_required; ++k)
      if (!vals_[k])
        type_error(
            fmt::format("{}() missing required argument '{}' (pos {})", fname, names_[k], k + 1));
  }

  const Value* get(size_t k) const { return vals_[k]; }
  bool given(size_t k) const { return vals_[k] != nullptr; }
  Value value_or(size_t k, Value fallback) const {
    return vals_[k] ? *vals_[k] : std::move(fallback);
  }
  bool bool_or(size_t k, bool fallback) const { return vals_[k] ? truthy(*vals_[k]) : fallback; }
  int64_t int_or(size_t k, int64_t fallback) const {
    if (!vals_[k]) return fallback;
    if (!vals_[k]->is_int())
      type_error(
          fmt::format("'{}' object cannot be interpreted as an integer", type_name(*vals_[k])));
    return vals_[k]->as_int();
  }
  std::string str_or(size_t k, std::string fallback) const {
    return vals_[k] ? to_str(*vals_[k]) : std::move(fallback);
  }

 private:
  std::vector<const char*> names_;
  std::vector<const Value*> vals_;
};

void no_args(const std::string& fname, CallArgs& a) {
  Args(fname, a, {});
}

// A generator whose body runs on first use, as a Python generator function's does.
Value lazy_generator(std::function<List()> producer) {
  IteratorData d;
  d.producer = std::move(producer);
  d.type_name = "generator";
  d.repr = "<generator object>";
  return Value::iterator(std::move(d));
}

Value str_list(const std::vector<std::string>& parts) {
  List l;
  l.reserve(parts.size());
  for (const std::string& p : parts) l.push_back(Value::string(p));
  return Value::list(std::move(l));
}

std::string soft_str(const Value& v) {
  return to_str(v);
}

// A str result of a filter or method that keeps Markup-ness (markupsafe wraps these).
Value like(const Value& v, std::string s) {
  return v.is_string() && v.markup ? Value::markup_string(std::move(s))
                                   : Value::string(std::move(s));
}

// jinja2's make_attrgetter: "a.b.0" walks items (environment.getitem) part by part.
Value attr_path(Interpreter& in, const Value& item, const Value& attribute, const Value* fallback) {
  std::vector<Value> parts;
  if (attribute.is_string()) {
    for (const std::string& p : py::split(attribute.s, std::string("."), -1)) {
      bool digits = !p.empty() &&
                    std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
      parts.push_back(digits && p.size() < 18 ? Value::integer(std::stoll(p)) : Value::string(p));
    }
  } else {
    parts.push_back(attribute);
  }
  Value cur = item;
  for (const Value& p : parts) {
    cur = in.get_item(cur, p);
    if (fallback && !fallback->is_none() && cur.is_undefined()) cur = *fallback;
  }
  return cur;
}

Value ignore_case(const Value& v) {
  return v.is_string() ? Value::string(py::lower(v.s)) : v;
}

// ---- filters ---------------------------------------------------------------------------

Value f_abs(Interpreter&, const Value& v, CallArgs& a) {
  no_args("abs", a);
  if (v.is_int()) {
    if (v.as_int() == INT64_MIN)
      raise_error(TemplateErrorKind::kOverflow, "integer overflow in abs()");
    return Value::integer(std::llabs(v.as_int()));
  }
  if (v.type == Value::Type::kFloat) return Value::number(std::fabs(v.f));
  type_error(fmt::format("bad operand type for abs(): '{}'", type_name(v)));
}

Value f_attr(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("attr", a, {"name"}, 1);
  std::string name = to_str(*args.get(0));
  if (v.is_dict()) {
    if (auto m = builtin_attribute(v, name)) return *m;
    return Value::undefined(fmt::format("'{}' has no attribute '{}'", object_type_repr(v), name));
  }
  return in.get_attr(v, name);
}

Value f_batch(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("batch", a, {"linecount", "fill_with"}, 1);
  int64_t n = args.int_or(0, 1);
  Value fill = args.value_or(1, Value::none());
  return lazy_generator([&in, v, n, fill] {
    List out, tmp;
    for (Value& item : iterate(v)) {
      in.charge(1);
      if (static_cast<int64_t>(tmp.size()) == n) {
        out.push_back(Value::list(std::move(tmp)));
        tmp.clear();
      }
      tmp.push_back(std::move(item));
    }
    if (!tmp.empty()) {
      if (!fill.is_none())
        while (static_cast<int64_t>(tmp.size()) < n) tmp.push_back(fill);
      out.push_back(Value::list(std::move(tmp)));
    }
    return out;
  });
}

Value f_capitalize(Interpreter&, const Value& v, CallArgs& a) {
  no_args("capitalize", a);
  return like(v, py::capitalize(soft_str(v)));
}

std::string center(Interpreter& in, const std::string& s, int64_t width, const std::string& fill) {
  int64_t len = static_cast<int64_t>(py::length(s));
  if (width <= len) return s;
  in.check_size(static_cast<size_t>(width));
  int64_t marg = width - len;
  int64_t left = marg / 2 + (marg & width & 1);
  std::string out;
  for (int64_t k = 0; k < left; ++k) out += fill;
  out += s;
  for (int64_t k = 0; k < marg - left; ++k) out += fill;
  return out;
}

Value f_center(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("center", a, {"width"});
  return Value::string(center(in, soft_str(v), args.int_or(0, 80), " "));
}

Value f_default(Interpreter&, const Value& v, CallArgs& a) {
  Args args("default", a, {"default_value", "boolean"});
  bool boolean = args.bool_or(1, false);
  if (v.is_undefined() || (boolean && !truthy(v))) return args.value_or(0, Value::string(""));
  return v;
}

Value f_dictsort(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("dictsort", a, {"case_sensitive", "by", "reverse"});
  bool case_sensitive = args.bool_or(0, false);
  std::string by = args.str_or(1, "key");
  bool reverse = args.bool_or(2, false);
  if (by != "key" && by != "value")
    raise_error(TemplateErrorKind::kFilterArgument,
                "You can only sort by either \"key\" or \"value\"");
  if (!v.is_dict()) type_error(fmt::format("'{}' object has no attribute 'items'", type_name(v)));
  List items;
  for (const auto& [k, val] : v.dict_data().entries) items.push_back(Value::list({k, val}, true));
  in.charge(static_cast<int64_t>(items.size()));
  size_t pos = by == "key" ? 0 : 1;
  auto key = [&](const Value& t) {
    return case_sensitive ? t.items()[pos] : ignore_case(t.items()[pos]);
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    return reverse ? compare(key(y), key(x), "<") < 0 : compare(key(x), key(y), "<") < 0;
  });
  return Value::list(std::move(items));
}

Value f_escape(Interpreter&, const Value& v, CallArgs& a) {
  no_args("escape", a);
  if (v.is_string() && v.markup) return v;
  return Value::markup_string(html_escape(to_str(v)));
}

Value f_first(Interpreter&, const Value& v, CallArgs& a) {
  no_args("first", a);
  if (v.type == Value::Type::kIterator && !v.iterator_data().reiterable) {
    IteratorData& it = v.iterator_data();
    materialize(it);
    if (it.pos < it.items.size()) return it.items[it.pos++];
  } else {
    List items = iterate(v);
    if (!items.empty()) return items.front();
  }
  return Value::undefined("No first item, sequence was empty.");
}

// Python's float(str): surrounding whitespace, sign, digits with single underscores, inf/nan.
std::optional<double> parse_float(const std::string& text) {
  std::string s = py::strip(text, std::nullopt, true, true);
  std::string clean;
  for (size_t k = 0; k < s.size(); ++k) {
    if (s[k] == '_') {
      if (k == 0 || k + 1 >= s.size() || !std::isdigit(static_cast<unsigned char>(s[k - 1])) ||
          !std::isdigit(static_cast<unsigned char>(s[k + 1])))
        return std::nullopt;
      continue;
    }
    clean += s[k];
  }
  std::string low = py::lower(clean);
  std::string body = !low.empty() && (low[0] == '+' || low[0] == '-') ? low.substr(1) : low;
  if (body == "inf" || body == "infinity" || body == "nan") {
    double r = body == "nan" ? NAN : INFINITY;
    return low[0] == '-' ? -r : r;
  }
  if (body.empty() || body.find_first_not_of("0123456789.e+-") != std::string::npos)
    return std::nullopt;
  if (body[0] != '.' && !std::isdigit(static_cast<unsigned char>(body[0]))) return std::nullopt;
  char* end = nullptr;
  double r = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size()) return std::nullopt;
  return r;
}

Value f_float(Interpreter&, const Value& v, CallArgs& a) {
  Args args("float", a, {"default"});
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_number()) return Value::number(v.as_double());
  if (v.is_string())
    if (auto d = parse_float(v.s)) return Value::number(*d);
  return args.value_or(0, Value::number(0.0));
}

// Python's int(str, base).
std::optional<int64_t> parse_int(const std::string& text, int64_t base) {
  std::string s = py::strip(text, std::nullopt, true, true);
  bool neg = false;
  size_t k = 0;
  if (k < s.size() && (s[k] == '+' || s[k] == '-')) neg = s[k++] == '-';
  auto prefix = [&](char p) {
    return k + 1 < s.size() && s[k] == '0' && (s[k + 1] == p || s[k + 1] == p - 32);
  };
  if (base == 0) {
    base = prefix('x') ? 16 : prefix('o') ? 8 : prefix('b') ? 2 : 10;
    if (base != 10) k += 2;
  } else if ((base == 16 && prefix('x')) || (base == 8 && prefix('o')) ||
             (base == 2 && prefix('b'))) {
    k += 2;
    if (k < s.size() && s[k] == '_') ++k;
  }
  if (base < 2 || base > 36)
    raise_error(TemplateErrorKind::kValue, "int() base must be >= 2 and <= 36, or 0");
  if (k >= s.size()) return std::nullopt;
  int64_t r = 0;
  bool last_digit = false;
  for (; k < s.size(); ++k) {
    char c = s[k];
    if (c == '_' && last_digit && k + 1 < s.size() && s[k + 1] != '_') {
      last_digit = false;
      continue;
    }
    int d = (c >= '0' && c <= '9')   ? c - '0'
            : (c >= 'a' && c <= 'z') ? c - 'a' + 10
            : (c >= 'A' && c <= 'Z') ? c - 'A' + 10
                                     : 99;
    if (d >= base) return std::nullopt;
    if (__builtin_mul_overflow(r, base, &r) || __builtin_add_overflow(r, d, &r))
      raise_error(TemplateErrorKind::kOverflow, "integer literal too large for 64 bits");
    last_digit = true;
  }
  if (!last_digit) return std::nullopt;
  return neg ? -r : r;
}

Value float_to_int(double d) {
  if (std::isinf(d))
    raise_error(TemplateErrorKind::kOverflow, "cannot convert float infinity to integer");
  if (std::fabs(d) >= 9.2e18)
    raise_error(TemplateErrorKind::kOverflow, "integer does not fit in 64 bits");
  return Value::integer(static_cast<int64_t>(std::trunc(d)));
}

Value f_int(Interpreter&, const Value& v, CallArgs& a) {
  Args args("int", a, {"default", "base"});
  Value fallback = args.value_or(0, Value::integer(0));
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_int()) return Value::integer(v.as_int());
  if (v.type == Value::Type::kFloat) {
    if (std::isnan(v.f)) return fallback;
    return float_to_int(v.f);
  }
  if (v.is_string()) {
    if (auto i = parse_int(v.s, args.int_or(1, 10))) return Value::integer(*i);
    if (auto d = parse_float(v.s)) {
      if (std::isnan(*d)) return fallback;
      return float_to_int(*d);
    }
  }
  return fallback;
}

Value f_indent(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("indent", a, {"width", "first", "blank"});
  std::string indention;
  if (args.given(0) && args.get(0)->is_string()) {
    indention = args.get(0)->s;
  } else {
    int64_t w = args.int_or(0, 4);
    in.check_size(static_cast<size_t>(std::max<int64_t>(w, 0)));
    indention = std::string(static_cast<size_t>(std::max<int64_t>(w, 0)), ' ');
  }
  bool first = args.bool_or(1, false), blank = args.bool_or(2, false);
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_string())
    type_error(fmt::format("unsupported operand type(s) for +=: '{}' and 'str'", type_name(v)));
  std::vector<std::string> lines = py::splitlines(v.s + "\n", false);
  in.check_size(v.s.size() + lines.size() * indention.size());
  std::string rv;
  if (blank) {
    for (size_t k = 0; k < lines.size(); ++k) rv += (k ? "\n" + indention : "") + lines[k];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t k = 1; k < lines.size(); ++k)
      rv += "\n" + (lines[k].empty() ? "" : indention + lines[k]);
  }
  if (first) rv = indention + rv;
  return like(v, std::move(rv));
}

Value f_items(Interpreter&, const Value& v, CallArgs& a) {
  no_args("items", a);
  return lazy_generator([v] {
    List out;
    if (v.is_undefined()) return out;
    if (!v.is_dict())
      raise_error(TemplateErrorKind::kFilterArgument, "can only get item pairs from a mapping.");
    for (const auto& [k, val] : v.dict_data().entries) out.push_back(Value::list({k, val}, true));
    return out;
  });
}

Value f_join(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("join", a, {"d", "attribute"});
  std::string sep = args.str_or(0, "");
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v)) {
    in.charge(1);
    if (!first) out += sep;
    first = false;
    out += to_str(args.given(1) ? attr_path(in, item, *args.get(1), nullptr) : item);
    in.check_size(out.size());
  }
  return Value::string(std::move(out));
}

Value f_last(Interpreter&, const Value& v, CallArgs& a) {
  no_args("last", a);
  if (v.type == Value::Type::kIterator && !v.iterator_data().reiterable)
    type_error(fmt::format("'{}' object is not reversible", type_name(v)));
  if (v.type == Value::Type::kNone || v.is_number() || v.type == Value::Type::kNamespace)
    type_error(fmt::format("'{}' object is not reversible", type_name(v)));
  List items = iterate(v);
  if (!items.empty()) return items.back();
  return Value::undefined("No last item, sequence was empty.");
}

Value f_length(Interpreter&, const Value& v, CallArgs& a) {
  no_args("length", a);
  return Value::integer(length(v));
}

Value f_list(Interpreter&, const Value& v, CallArgs& a) {
  no_args("list", a);
  return Value::list(iterate(v));
}

Value f_lower(Interpreter&, const Value& v, CallArgs& a) {
  no_args("lower", a);
  return like(v, py::lower(soft_str(v)));
}

Value f_upper(Interpreter&, const Value& v, CallArgs& a) {
  no_args("upper", a);
  return like(v, py::upper(soft_str(v)));
}

Value f_map(Interpreter& in, const Value& v, CallArgs& a) {
  std::function<Value(const Value&)> func;
  if (a.positional.empty() && std::any_of(a.keywords.begin(), a.keywords.end(),
                                          [](auto& kv) { return kv.first == "attribute"; })) {
    Value attribute, fallback = Value::none();
    for (auto& [k, val] : a.keywords) {
      if (k == "attribute") {
        attribute = val;
      } else if (k == "default") {
        fallback = val;
      } else {
        raise_error(TemplateErrorKind::kFilterArgument,
                    fmt::format("Unexpected keyword argument '{}'", k));
      }
    }
    func = [&in, attribute, fallback](const Value& item) {
      return attr_path(in, item, attribute, &fallback);
    };
  } else {
    if (a.positional.empty())
      raise_error(TemplateErrorKind::kFilterArgument, "map requires a filter argument");
    std::string name = to_str(a.positional[0]);
    CallArgs rest;
    rest.positional.assign(a.positional.begin() + 1, a.positional.end());
    rest.keywords = a.keywords;
    func = [&in, name, rest](const Value& item) {
      CallArgs copy = rest;
      return in.apply_filter(name, item, copy);
    };
  }
  return lazy_generator([v, func] {
    List out;
    if (truthy(v))
      for (const Value& item : iterate(v)) out.push_back(func(item));
    return out;
  });
}

Value select_or_reject(Interpreter& in, const Value& v, CallArgs& a, bool select,
                       bool lookup_attr) {
  size_t off = 0;
  Value attribute;
  if (lookup_attr) {
    if (a.positional.empty())
      raise_error(TemplateErrorKind::kFilterArgument, "Missing parameter for attribute name");
    attribute = a.positional[0];
    off = 1;
  }
  std::optional<std::string> test;
  CallArgs rest;
  if (a.positional.size() > off) {
    test = to_str(a.positional[off]);
    rest.positional.assign(a.positional.begin() + static_cast<std::ptrdiff_t>(off) + 1,
                           a.positional.end());
    rest.keywords = a.keywords;
  }
  return lazy_generator([&in, v, lookup_attr, attribute, test, rest, select] {
    List out;
    if (truthy(v)) {
      for (const Value& item : iterate(v)) {
        Value x = lookup_attr ? attr_path(in, item, attribute, nullptr) : item;
        bool r;
        if (test) {
          CallArgs copy = rest;
          r = in.apply_test(*test, x, copy);
        } else {
          in.charge(1);
          r = truthy(x);
        }
        if (r == select) out.push_back(item);
      }
    }
    return out;
  });
}

Value f_select(Interpreter& in, const Value& v, CallArgs& a) {
  return select_or_reject(in, v, a, true, false);
}
Value f_reject(Interpreter& in, const Value& v, CallArgs& a) {
  return select_or_reject(in, v, a, false, false);
}
Value f_selectattr(Interpreter& in, const Value& v, CallArgs& a) {
  return select_or_reject(in, v, a, true, true);
}
Value f_rejectattr(Interpreter& in, const Value& v, CallArgs& a) {
  return select_or_reject(in, v, a, false, true);
}

Value min_or_max(Interpreter& in, const Value& v, CallArgs& a, bool want_max) {
  Args args(want_max ? "max" : "min", a, {"case_sensitive", "attribute"});
  bool case_sensitive = args.bool_or(0, false);
  List items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  auto key = [&](const Value& item) {
    Value k = args.given(1) ? attr_path(in, item, *args.get(1), nullptr) : item;
    return case_sensitive ? k : ignore_case(k);
  };
  size_t best = 0;
  for (size_t k = 1; k < items.size(); ++k) {
    in.charge(1);
    int c = compare(key(items[k]), key(items[best]), want_max ? ">" : "<");
    if (want_max ? c > 0 : c < 0) best = k;
  }
  return items[best];
}

Value f_max(Interpreter& in, const Value& v, CallArgs& a) {
  return min_or_max(in, v, a, true);
}
Value f_min(Interpreter& in, const Value& v, CallArgs& a) {
  return min_or_max(in, v, a, false);
}

Value f_pprint(Interpreter&, const Value& v, CallArgs& a) {
  no_args("pprint", a);
  return Value::string(repr(v));
}

Value f_replace(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("replace", a, {"old", "new", "count"}, 2);
  int64_t count = args.given(2) && !args.get(2)->is_none() ? args.int_or(2, -1) : -1;
  std::string s = soft_str(v), old = to_str(*args.get(0)), repl = to_str(*args.get(1));
  if (!old.empty() && !repl.empty() && repl.size() > old.size())
    in.check_size(s.size() + (s.size() / old.size() + 1) * (repl.size() - old.size()));
  if (old.empty()) in.check_size(s.size() + (py::length(s) + 1) * repl.size());
  return Value::string(py::replace(s, old, repl, count));
}

Value f_reverse(Interpreter&, const Value& v, CallArgs& a) {
  no_args("reverse", a);
  if (v.is_string()) {
    std::u32string u = py::decode(v.s);
    std::reverse(u.begin(), u.end());
    return Value::string(py::encode(u));
  }
  List items = iterate(v);
  std::reverse(items.begin(), items.end());
  if (v.is_list() || v.is_dict() || v.is_undefined()) {
    IteratorData d;
    d.items = std::move(items);
    d.type_name = v.is_dict()               ? "dict_reversekeyiterator"
                  : v.is_list() && !v.tuple ? "list_reverseiterator"
                                            : "reversed";
    d.repr = "<" + d.type_name + " object>";
    return Value::iterator(std::move(d));
  }
  return Value::list(std::move(items));
}

Value f_round(Interpreter&, const Value& v, CallArgs& a) {
  Args args("round", a, {"precision", "method"});
  int64_t precision = args.int_or(0, 0);
  std::string method = args.str_or(1, "common");
  if (method != "common" && method != "ceil" && method != "floor")
    raise_error(TemplateErrorKind::kFilterArgument, "method must be common, ceil or floor");
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_number())
    type_error(fmt::format("type {} doesn't define __round__ method", type_name(v)));
  if (method == "common") {
    if (v.is_int()) {
      if (precision >= 0) return Value::integer(v.as_int());
      return float_to_int(py::round_half_even(static_cast<double>(v.as_int()), precision));
    }
    return Value::number(py::round_half_even(v.f, precision));
  }
  double p = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_double() * p;
  return Value::number((method == "ceil" ? std::ceil(x) : std::floor(x)) / p);
}

Value f_safe(Interpreter&, const Value& v, CallArgs& a) {
  no_args("safe", a);
  return Value::markup_string(to_str(v));
}

Value f_slice(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("slice", a, {"slices", "fill_with"}, 1);
  int64_t slices = args.int_or(0, 1);
  Value fill = args.value_or(1, Value::none());
  return lazy_generator([&in, v, slices, fill] {
    List seq = iterate(v);
    int64_t n = static_cast<int64_t>(seq.size());
    if (slices <= 0)
      raise_error(TemplateErrorKind::kZeroDivision, "integer division or modulo by zero");
    in.charge(slices);
    int64_t per = n / slices, extra = n % slices, offset = 0;
    List out;
    for (int64_t k = 0; k < slices; ++k) {
      int64_t start = offset + k * per;
      if (k < extra) ++offset;
      int64_t end = offset + (k + 1) * per;
      List tmp(seq.begin() + start, seq.begin() + end);
      if (!fill.is_none() && k >= extra) tmp.push_back(fill);
      out.push_back(Value::list(std::move(tmp)));
    }
    return out;
  });
}

Value f_sort(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("sort", a, {"reverse", "case_sensitive", "attribute"});
  bool reverse = args.bool_or(0, false), case_sensitive = args.bool_or(1, false);
  List items = iterate(v);
  in.charge(static_cast<int64_t>(items.size()));
  std::vector<Value> keys;
  for (const Value& item : items) {
    Value k = args.given(2) && !args.get(2)->is_none() ? attr_path(in, item, *args.get(2), nullptr)
                                                       : item;
    keys.push_back(case_sensitive ? k : ignore_case(k));
  }
  std::vector<size_t> order(items.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    return reverse ? compare(keys[y], keys[x], "<") < 0 : compare(keys[x], keys[y], "<") < 0;
  });
  List out;
  for (size_t k : order) out.push_back(items[k]);
  return Value::list(std::move(out));
}

Value f_string(Interpreter&, const Value& v, CallArgs& a) {
  no_args("string", a);
  return like(v, to_str(v));
}

Value f_sum(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("sum", a, {"attribute", "start"});
  Value total = args.value_or(1, Value::integer(0));
  for (const Value& item : iterate(v)) {
    in.charge(1);
    Value x = args.given(0) && !args.get(0)->is_none() ? attr_path(in, item, *args.get(0), nullptr)
                                                       : item;
    if (x.is_undefined()) fail_undefined(x);
    if (total.is_int() && x.is_int()) {
      int64_t r;
      if (__builtin_add_overflow(total.as_int(), x.as_int(), &r))
        raise_error(TemplateErrorKind::kOverflow, "integer overflow in sum()");
      total = Value::integer(r);
    } else if (total.is_number() && x.is_number()) {
      total = Value::number(total.as_double() + x.as_double());
    } else if (total.is_list() && x.is_list() && total.tuple == x.tuple) {
      List r = total.items();
      r.insert(r.end(), x.items().begin(), x.items().end());
      in.check_size(r.size());
      total = Value::list(std::move(r), total.tuple);
    } else {
      type_error(fmt::format("unsupported operand type(s) for +: '{}' and '{}'", type_name(total),
                             type_name(x)));
    }
  }
  return total;
}

// jinja2's do_title: capitalize each run that follows [-\s({\[<].
Value f_title(Interpreter&, const Value& v, CallArgs& a) {
  no_args("title", a);
  std::u32string u = py::decode(soft_str(v));
  std::string out;
  bool word_start = true;
  for (char32_t c : u) {
    bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py::isspace(c);
    if (sep) {
      py::append_utf8(out, c);
      word_start = true;
    } else if (word_start) {
      if (c == 0xDF) {
        out += "SS";
      } else {
        py::append_utf8(out, py::to_upper(c));
      }
      word_start = false;
    } else {
      py::append_utf8(out, py::to_lower(c));
    }
  }
  return Value::string(std::move(out));
}

// The tojson that transformers registers: json.dumps(x, ensure_ascii=False, indent, separators,
// sort_keys).
Value f_tojson(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("tojson", a, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonOptions o;
  o.ensure_ascii = args.bool_or(0, false);
  if (args.given(1) && !args.get(1)->is_none()) {
    const Value& ind = *args.get(1);
    if (ind.is_string()) {
      o.indent = ind.s;
    } else if (ind.is_int()) {
      int64_t n = std::max<int64_t>(0, ind.as_int());
      in.check_size(static_cast<size_t>(n));
      o.indent = std::string(static_cast<size_t>(n), ' ');
    } else {
      type_error(fmt::format("can't multiply sequence by non-int of type '{}'", type_name(ind)));
    }
    o.item_separator = ",";
  }
  if (args.given(2) && !args.get(2)->is_none()) {
    List seps = iterate(*args.get(2));
    if (seps.size() != 2)
      raise_error(TemplateErrorKind::kValue, fmt::format("too many values to unpack (expected 2)"));
    o.item_separator = to_str(seps[0]);
    o.key_separator = to_str(seps[1]);
  }
  o.sort_keys = args.bool_or(3, false);
  std::string s = to_json(v, o);
  in.check_size(s.size());
  in.charge(static_cast<int64_t>(s.size() >> 10));
  return Value::string(std::move(s));
}

Value f_trim(Interpreter&, const Value& v, CallArgs& a) {
  Args args("trim", a, {"chars"});
  std::optional<std::string> chars;
  if (args.given(0) && !args.get(0)->is_none()) chars = to_str(*args.get(0));
  return like(v, py::strip(soft_str(v), chars, true, true));
}

Value f_truncate(Interpreter&, const Value& v, CallArgs& a) {
  Args args("truncate", a, {"length", "killwords", "end", "leeway"});
  int64_t len = args.int_or(0, 255);
  bool killwords = args.bool_or(1, false);
  std::string end = args.str_or(2, "...");
  int64_t leeway = args.given(3) && !args.get(3)->is_none() ? args.int_or(3, 5) : 5;
  int64_t end_len = static_cast<int64_t>(py::length(end));
  if (len < end_len)
    raise_error(TemplateErrorKind::kValue,
                fmt::format("expected length >= {}, got {}", end_len, len));
  if (leeway < 0)
    raise_error(TemplateErrorKind::kValue, fmt::format("expected leeway >= 0, got {}", leeway));
  // jinja2 measures and returns the value itself: a short list comes back as a list.
  if (length(v) <= len + leeway) return v;
  if (!v.is_string())
    type_error(
        fmt::format("can only concatenate {} (not \"str\") to {}", type_name(v), type_name(v)));
  std::u32string u = py::decode(v.s);
  std::string head = py::encode(u.substr(0, static_cast<size_t>(len - end_len)));
  if (killwords) return Value::string(head + end);
  return Value::string(py::rsplit(head, std::string(" "), 1)[0] + end);
}

Value f_unique(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("unique", a, {"case_sensitive", "attribute"});
  bool case_sensitive = args.bool_or(0, false);
  std::optional<Value> attribute;
  if (args.given(1) && !args.get(1)->is_none()) attribute = *args.get(1);
  return lazy_generator([&in, v, case_sensitive, attribute] {
    List out, seen;
    for (const Value& item : iterate(v)) {
      in.charge(static_cast<int64_t>(seen.size()) / 16 + 1);
      Value k = attribute ? attr_path(in, item, *attribute, nullptr) : item;
      if (!case_sensitive) k = ignore_case(k);
      if ((k.is_list() && !k.tuple) || k.is_dict())
        type_error(fmt::format("unhashable type: '{}'", type_name(k)));
      if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, k); })) {
        seen.push_back(k);
        out.push_back(item);
      }
    }
    return out;
  });
}

Value f_wordcount(Interpreter&, const Value& v, CallArgs& a) {
  no_args("wordcount", a);
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : py::decode(soft_str(v))) {
    bool w = py::isalnum(c) || c == '_' ||
             (c >= 0x80 && !py::isspace(c) && !(c >= 0x2000 && c <= 0x206F) &&
              !(c >= 0x3000 && c <= 0x303F) && !(c >= 0xFF00 && c <= 0xFF0F));
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value::integer(n);
}

Value f_format(Interpreter&, const Value& v, CallArgs& a) {
  if (!a.positional.empty() && !a.keywords.empty())
    raise_error(TemplateErrorKind::kFilterArgument,
                "can't handle positional and keyword arguments");
  if (!a.keywords.empty()) {
    Dict d;
    for (auto& [k, val] : a.keywords) d.set(Value::string(k), val);
    return Value::string(percent_format(soft_str(v), Value::dict(std::move(d))));
  }
  return Value::string(percent_format(soft_str(v), Value::list(a.positional, true)));
}

const std::map<std::string, FilterFn, std::less<>>& filters() {
  static const std::map<std::string, FilterFn, std::less<>> kFilters = {
      {"abs", f_abs},
      {"attr", f_attr},
      {"batch", f_batch},
      {"capitalize", f_capitalize},
      {"center", f_center},
      {"count", f_length},
      {"d", f_default},
      {"default", f_default},
      {"dictsort", f_dictsort},
      {"e", f_escape},
      {"escape", f_escape},
      {"first", f_first},
      {"float", f_float},
      {"forceescape", f_escape},
      {"format", f_format},
      {"indent", f_indent},
      {"int", f_int},
      {"items", f_items},
      {"join", f_join},
      {"last", f_last},
      {"length", f_length},
      {"list", f_list},
      {"lower", f_lower},
      {"map", f_map},
      {"max", f_max},
      {"min", f_min},
      {"pprint", f_pprint},
      {"reject", f_reject},
      {"rejectattr", f_rejectattr},
      {"replace", f_replace},
      {"reverse", f_reverse},
      {"round", f_round},
      {"safe", f_safe},
      {"select", f_select},
      {"selectattr", f_selectattr},
      {"slice", f_slice},
      {"sort", f_sort},
      {"string", f_string},
      {"sum", f_sum},
      {"title", f_title},
      {"tojson", f_tojson},
      {"trim", f_trim},
      {"truncate", f_truncate},
      {"unique", f_unique},
      {"upper", f_upper},
      {"wordcount", f_wordcount},
  };
  return kFilters;
}

// ---- tests -----------------------------------------------------------------------------

const Value& arg0(const std::string& test, CallArgs& a) {
  if (a.positional.empty())
    type_error(fmt::format("test_{}() missing 1 required positional argument", test));
  return a.positional[0];
}

bool t_defined(Interpreter&, const Value& v, CallArgs&) {
  return !v.is_undefined();
}
bool t_undefined(Interpreter&, const Value& v, CallArgs&) {
  return v.is_undefined();
}
bool t_none(Interpreter&, const Value& v, CallArgs&) {
  return v.is_none();
}
bool t_boolean(Interpreter&, const Value& v, CallArgs&) {
  return v.type == Value::Type::kBool;
}
bool t_true(Interpreter&, const Value& v, CallArgs&) {
  return v.type == Value::Type::kBool && v.b;
}
bool t_false(Interpreter&, const Value& v, CallArgs&) {
  return v.type == Value::Type::kBool && !v.b;
}
bool t_integer(Interpreter&, const Value& v, CallArgs&) {
  return v.type == Value::Type::kInt;
}
bool t_float(Interpreter&, const Value& v, CallArgs&) {
  return v.type == Value::Type::kFloat;
}
bool t_number(Interpreter&, const Value& v, CallArgs&) {
  return v.is_number();
}
bool t_string(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string();
}
bool t_mapping(Interpreter&, const Value& v, CallArgs&) {
  return v.is_dict();
}
bool t_callable(Interpreter&, const Value& v, CallArgs&) {
  return v.type == Value::Type::kCallable || v.is_undefined() || v.type == Value::Type::kLoop;
}
bool t_iterable(Interpreter&, const Value& v, CallArgs&) {
  using T = Value::Type;
  return v.type == T::kString || v.type == T::kList || v.type == T::kDict ||
         v.type == T::kIterator || v.type == T::kUndefined || v.type == T::kLoop;
}
bool t_sequence(Interpreter&, const Value& v, CallArgs&) {
  using T = Value::Type;
  return v.type == T::kString || v.type == T::kList || v.type == T::kDict ||
         v.type == T::kUndefined ||
         (v.type == T::kIterator && v.iterator_data().type_name == "range");
}
bool t_sameas(Interpreter&, const Value& v, CallArgs& a) {
  const Value& o = arg0("sameas", a);
  if (v.type != o.type) return false;
  if (v.ptr || o.ptr) return v.ptr == o.ptr;
  return equals(v, o);
}
bool t_eq(Interpreter&, const Value& v, CallArgs& a) {
  return equals(v, arg0("eq", a));
}
bool t_ne(Interpreter&, const Value& v, CallArgs& a) {
  return !equals(v, arg0("ne", a));
}
bool t_lt(Interpreter&, const Value& v, CallArgs& a) {
  return compare(v, arg0("lt", a), "<") < 0;
}
bool t_le(Interpreter&, const Value& v, CallArgs& a) {
  return compare(v, arg0("le", a), "<=") <= 0;
}
bool t_gt(Interpreter&, const Value& v, CallArgs& a) {
  return compare(v, arg0("gt", a), ">") > 0;
}
bool t_ge(Interpreter&, const Value& v, CallArgs& a) {
  return compare(v, arg0("ge", a), ">=") >= 0;
}
bool t_in(Interpreter&, const Value& v, CallArgs& a) {
  return contains(arg0("in", a), v);
}

// value % m == want, with Python's % on int or float.
bool mod_equals(const Value& v, int64_t m, int64_t want) {
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_int()) {
    if (m == 0) raise_error(TemplateErrorKind::kZeroDivision, "integer division or modulo by zero");
    if (m == -1) return want == 0;
    int64_t r = v.as_int() % m;
    if (r != 0 && ((r < 0) != (m < 0))) r += m;
    return r == want;
  }
  if (v.type == Value::Type::kFloat) {
    if (m == 0) raise_error(TemplateErrorKind::kZeroDivision, "float modulo");
    double r = std::fmod(v.f, static_cast<double>(m));
    if (r != 0 && ((r < 0) != (m < 0))) r += static_cast<double>(m);
    return r == static_cast<double>(want);
  }
  type_error(fmt::format("unsupported operand type(s) for %: '{}' and 'int'", type_name(v)));
}
bool t_odd(Interpreter&, const Value& v, CallArgs&) {
  return mod_equals(v, 2, 1);
}
bool t_even(Interpreter&, const Value& v, CallArgs&) {
  return mod_equals(v, 2, 0);
}
bool t_divisibleby(Interpreter&, const Value& v, CallArgs& a) {
  const Value& n = arg0("divisibleby", a);
  if (!n.is_int()) type_error("divisibleby needs an integer");
  return mod_equals(v, n.as_int(), 0);
}
bool t_lower(Interpreter&, const Value& v, CallArgs&) {
  std::u32string u = py::decode(to_str(v));
  bool cased = false;
  for (char32_t c : u) {
    if (py::isupper(c)) return false;
    if (py::islower(c)) cased = true;
  }
  return cased;
}
bool t_upper(Interpreter&, const Value& v, CallArgs&) {
  std::u32string u = py::decode(to_str(v));
  bool cased = false;
  for (char32_t c : u) {
    if (py::islower(c)) return false;
    if (py::isupper(c)) cased = true;
  }
  return cased;
}
bool t_escaped(Interpreter&, const Value&, CallArgs&) {
  return false;
}
bool t_filter(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() && find_filter(v.s) != nullptr;
}
bool t_test(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() && find_test(v.s) != nullptr;
}

const std::map<std::string, TestFn, std::less<>>& tests() {
  static const std::map<std::string, TestFn, std::less<>> kTests = {
      {"defined", t_defined},
      {"undefined", t_undefined},
      {"none", t_none},
      {"boolean", t_boolean},
      {"true", t_true},
      {"false", t_false},
      {"integer", t_integer},
      {"float", t_float},
      {"number", t_number},
      {"string", t_string},
      {"mapping", t_mapping},
      {"callable", t_callable},
      {"iterable", t_iterable},
      {"sequence", t_sequence},
      {"sameas", t_sameas},
      {"eq", t_eq},
      {"equalto", t_eq},
      {"==", t_eq},
      {"ne", t_ne},
      {"!=", t_ne},
      {"lt", t_lt},
      {"lessthan", t_lt},
      {"<", t_lt},
      {"le", t_le},
      {"<=", t_le},
      {"gt", t_gt},
      {"greaterthan", t_gt},
      {">", t_gt},
      {"ge", t_ge},
      {">=", t_ge},
      {"in", t_in},
      {"odd", t_odd},
      {"even", t_even},
      {"divisibleby", t_divisibleby},
      {"lower", t_lower},
      {"upper", t_upper},
      {"escaped", t_escaped},
      {"filter", t_filter},
      {"test", t_test},
  };
  return kTests;
}

// ---- str.format ------------------------------------------------------------------------

// Applies a format spec ([[fill]align][sign][0][width][,][.precision][type]) to a value.
std::string apply_spec(const Value& v, const std::string& spec) {
  if (spec.empty()) return to_str(v);
  size_t k = 0;
  std::string fill = " ";
  char align = 0;
  std::u32string su = py::decode(spec);
  auto is_align = [](char32_t c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  size_t ku = 0;
  if (su.size() >= 2 && is_align(su[1])) {
    fill = py::encode(su.substr(0, 1));
    align = static_cast<char>(su[1]);
    ku = 2;
  } else if (!su.empty() && is_align(su[0])) {
    align = static_cast<char>(su[0]);
    ku = 1;
  }
  std::string rest = py::encode(su.substr(ku));
  char sign = 0;
  if (k < rest.size() && (rest[k] == '+' || rest[k] == '-' || rest[k] == ' ')) sign = rest[k++];
  bool zero = false;
  if (k < rest.size() && rest[k] == '0') {
    zero = true;
    ++k;
  }
  int64_t width = 0;
  while (k < rest.size() && std::isdigit(static_cast<unsigned char>(rest[k])))
    width = std::min<int64_t>(width * 10 + (rest[k++] - '0'), 100000);
  bool comma = false;
  if (k < rest.size() && (rest[k] == ',' || rest[k] == '_')) {
    comma = true;
    ++k;
  }
  int precision = -1;
  if (k < rest.size() && rest[k] == '.') {
    ++k;
    precision = 0;
    while (k < rest.size() && std::isdigit(static_cast<unsigned char>(rest[k])))
      precision = std::min(precision * 10 + (rest[k++] - '0'), 100);
  }
  char type = k < rest.size() ? rest[k++] : 0;
  if (k != rest.size()) raise_error(TemplateErrorKind::kValue, "Invalid format specifier");
  std::string body;
  bool numeric = false;
  if (type == 0 && !v.is_number()) type = 's';
  if (type == 's') {
    if (!v.is_string())
      raise_error(TemplateErrorKind::kValue,
                  fmt::format("Unknown format code 's' for object of type '{}'", type_name(v)));
    body = v.s;
    if (precision >= 0)
      body = py::encode(py::decode(body).substr(0, static_cast<size_t>(precision)));
  } else {
    if (!v.is_number())
      raise_error(
          TemplateErrorKind::kValue,
          fmt::format("Unknown format code '{}' for object of type '{}'", type, type_name(v)));
    numeric = true;
    char buf[512];
    std::string flags = sign == '+' ? "+" : sign == ' ' ? " " : "";
    if (type == 0 && v.is_int()) type = 'd';
    if (type == 'd') {
      if (!v.is_int())
        raise_error(TemplateErrorKind::kValue,
                    "Unknown format code 'd' for object of type 'float'");
      std::snprintf(buf, sizeof buf, ("%" + flags + "lld").c_str(),
                    static_cast<long long>(v.as_int()));
    } else if (type == 'x' || type == 'X' || type == 'o' || type == 'b') {
      if (!v.is_int())
        raise_error(TemplateErrorKind::kValue, "Unknown format code for object of type 'float'");
      int64_t x = v.as_int();
      std::string digits;
      uint64_t ux = static_cast<uint64_t>(x < 0 ? -(x + 1) + 1ULL : x);
      int base = type == 'o' ? 8 : type == 'b' ? 2 : 16;
      do {
        digits.insert(digits.begin(), "0123456789abcdef"[ux % base]);
        ux /= base;
      } while (ux);
      if (type == 'X') digits = py::upper(digits);
      std::snprintf(buf, sizeof buf, "%s%s", x < 0 ? "-" : flags.c_str(), digits.c_str());
    } else if (type == 0) {
      std::string r = to_str(v);
      std::snprintf(buf, sizeof buf, "%s%s", (sign == '+' && v.as_double() >= 0) ? "+" : "",
                    r.c_str());
    } else if (std::string_view("fFeEgG%").find(type) != std::string_view::npos) {
      double d = v.as_double();
      if (type == '%') d *= 100;
      char conv = type == '%' ? 'f' : type;
      std::snprintf(
          buf, sizeof buf,
          ("%" + flags + "." + std::to_string(precision < 0 ? 6 : precision) + conv).c_str(), d);
      if (type == '%') std::strncat(buf, "%", sizeof buf - std::strlen(buf) - 1);
    } else {
      raise_error(TemplateErrorKind::kValue, fmt::format("Unknown format code '{}'", type));
    }
    body = buf;
    if (comma) {
      size_t digits_begin = body.find_first_of("0123456789");
      size_t digits_end = body.find_first_not_of("0123456789", digits_begin);
      if (digits_end == std::string::npos) digits_end = body.size();
      for (int64_t p = static_cast<int64_t>(digits_end) - 3; p > static_cast<int64_t>(digits_begin);
           p -= 3)
        body.insert(static_cast<size_t>(p), ",");
    }
  }
  int64_t len = static_cast<int64_t>(py::length(body));
  if (width <= len) return body;
  if (align == 0) {
    align = numeric ? '>' : '<';
    if (zero) {
      fill = "0";
      align = '=';
    }
  }
  std::string pad;
  int64_t n = width - len;
  auto repeat = [&](int64_t c) {
    std::string s;
    for (int64_t q = 0; q < c; ++q) s += fill;
    return s;
  };
  if (align == '<') return body + repeat(n);
  if (align == '>') return repeat(n) + body;
  if (align == '^') return repeat(n / 2) + body + repeat(n - n / 2);
  size_t sign_len = !body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ') ? 1 : 0;
  return body.substr(0, sign_len) + repeat(n) + body.substr(sign_len);
}

std::string str_format(Interpreter& in, const std::string& f, CallArgs& a) {
  std::string out;
  size_t auto_index = 0;
  for (size_t k = 0; k < f.size(); ++k) {
    char c = f[k];
    if (c == '}') {
      if (k + 1 < f.size() && f[k + 1] == '}') {
        out += '}';
        ++k;
        continue;
      }
      raise_error(TemplateErrorKind::kValue, "Single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (k + 1 < f.size() && f[k + 1] == '{') {
      out += '{';
      ++k;
      continue;
    }
    size_t e = f.find('}', k);
    if (e == std::string::npos)
      raise_error(TemplateErrorKind::kValue, "Single '{' encountered in format string");
    std::string field = f.substr(k + 1, e - k - 1);
    k = e;
    std::string spec, conversion;
    if (size_t colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    if (size_t bang = field.find('!'); bang != std::string::npos) {
      conversion = field.substr(bang + 1);
      field.resize(bang);
    }
    std::string name = field, attr;
    if (size_t dot = name.find('.'); dot != std::string::npos) {
      attr = name.substr(dot + 1);
      name.resize(dot);
    }
    Value v;
    if (name.empty()) {
      if (auto_index >= a.positional.size())
        raise_error(
            TemplateErrorKind::kValue,
            fmt::format("Replacement index {} out of range for positional args tuple", auto_index));
      v = a.positional[auto_index++];
    } else if (std::all_of(name.begin(), name.end(),
                           [](char ch) { return ch >= '0' && ch <= '9'; }) &&
               name.size() < 9) {
      size_t idx = static_cast<size_t>(std::stoul(name));
      if (idx >= a.positional.size())
        raise_error(
            TemplateErrorKind::kValue,
            fmt::format("Replacement index {} out of range for positional args tuple", idx));
      v = a.positional[idx];
    } else {
      auto it = std::find_if(a.keywords.begin(), a.keywords.end(),
                             [&](auto& kv) { return kv.first == name; });
      if (it == a.keywords.end())
        raise_error(TemplateErrorKind::kValue, fmt::format("KeyError: '{}'", name));
      v = it->second;
    }
    if (!attr.empty()) v = in.get_attr(v, attr);
    if (conversion == "r") {
      v = Value::string(repr(v));
    } else if (conversion == "s") {
      v = Value::string(to_str(v));
    } else if (!conversion.empty()) {
      raise_error(TemplateErrorKind::kValue, "Unknown conversion specifier " + conversion);
    }
    out += apply_spec(v, spec);
    in.check_size(out.size());
  }
  return out;
}

// ---- methods ---------------------------------------------------------------------------

using Method = std::function<Value(Interpreter&, CallArgs&)>;

Value bound(const Value& self, const std::string& name, Method fn) {
  return Value::callable(name + " of " + type_name(self) + " object", "builtin_function_or_method",
                         std::move(fn));
}

std::optional<std::string> chars_arg(const Args& args, size_t k, const char* fname) {
  if (!args.given(k) || args.get(k)->is_none()) return std::nullopt;
  if (!args.get(k)->is_string()) type_error(fmt::format("{} arg must be None or str", fname));
  return args.get(k)->s;
}

std::optional<std::string> sep_arg(const Args& args, size_t k) {
  if (!args.given(k) || args.get(k)->is_none()) return std::nullopt;
  if (!args.get(k)->is_string())
    type_error(fmt::format("must be str or None, not {}", type_name(*args.get(k))));
  if (args.get(k)->s.empty()) raise_error(TemplateErrorKind::kValue, "empty separator");
  return args.get(k)->s;
}

// Code-point index range [start, end) from optional Python slice bounds, as byte offsets.
std::pair<size_t, size_t> byte_range(const std::string& s, const Args& args, size_t k) {
  std::u32string u = py::decode(s);
  int64_t n = static_cast<int64_t>(u.size());
  auto fix = [&](const Value* v, int64_t fallback) {
    if (v == nullptr || v->is_none()) return fallback;
    if (!v->is_int())
      type_error("slice indices must be integers or None or have an __index__ method");
    int64_t x = v->as_int();
    if (x < 0) x = std::max<int64_t>(0, x + n);
    return std::min(x, n);
  };
  int64_t b = fix(args.get(k), 0), e = fix(args.get(k + 1), n);
  if (b > e) return {std::string::npos, 0};
  size_t bb = py::encode(u.substr(0, static_cast<size_t>(b))).size();
  size_t eb = bb + py::encode(u.substr(static_cast<size_t>(b), static_cast<size_t>(e - b))).size();
  return {bb, eb};
}

int64_t byte_to_index(const std::string& s, size_t byte) {
  return static_cast<int64_t>(py::length(std::string_view(s).substr(0, byte)));
}

std::optional<Value> string_method(const Value& self, const std::string& name) {
  const std::string s = self.s;
  auto simple = [&](std::string (*fn)(std::string_view)) {
    return bound(self, name, [self, s, name, fn](Interpreter&, CallArgs& a) {
      no_args(name, a);
      return like(self, fn(s));
    });
  };
  if (name == "upper") return simple(py::upper);
  if (name == "lower" || name == "casefold") return simple(py::lower);
  if (name == "title") return simple(py::title);
  if (name == "capitalize") return simple(py::capitalize);
  if (name == "swapcase") return simple(py::swapcase);
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return bound(self, name, [self, s, name](Interpreter&, CallArgs& a) {
      Args args(name, a, {"chars"});
      return like(
          self, py::strip(s, chars_arg(args, 0, name.c_str()), name != "rstrip", name != "lstrip"));
    });
  if (name == "split" || name == "rsplit")
    return bound(self, name, [s, name](Interpreter& in, CallArgs& a) {
      Args args(name, a, {"sep", "maxsplit"});
      auto parts = name == "split" ? py::split(s, sep_arg(args, 0), args.int_or(1, -1))
                                   : py::rsplit(s, sep_arg(args, 0), args.int_or(1, -1));
      in.charge(static_cast<int64_t>(parts.size()));
      return str_list(parts);
    });
  if (name == "splitlines")
    return bound(self, name, [s](Interpreter&, CallArgs& a) {
      Args args("splitlines", a, {"keepends"});
      return str_list(py::splitlines(s, args.bool_or(0, false)));
    });
  if (name == "startswith" || name == "endswith")
    return bound(self, name, [s, name](Interpreter&, CallArgs& a) {
      Args args(name, a, {"prefix", "start", "end"}, 1);
      auto [b, e] = byte_range(s, args, 1);
      if (b == std::string::npos) return Value::boolean(false);
      std::string_view sub = std::string_view(s).substr(b, e - b);
      auto check = [&](const Value& p) {
        if (!p.is_string())
          type_error(fmt::format("{} first arg must be str or a tuple of str, not {}", name,
                                 type_name(p)));
        return name == "startswith"
                   ? sub.substr(0, std::min(sub.size(), p.s.size())) == p.s &&
                         sub.size() >= p.s.size()
                   : sub.size() >= p.s.size() && sub.substr(sub.size() - p.s.size()) == p.s;
      };
      const Value& p = *args.get(0);
      if (p.is_list() && p.tuple) {
        for (const Value& x : p.items())
          if (check(x)) return Value::boolean(true);
        return Value::boolean(false);
      }
      return Value::boolean(check(p));
    });
  if (name == "replace")
    return bound(self, name, [s](Interpreter& in, CallArgs& a) {
      Args args("replace", a, {"old", "new", "count"}, 2);
      if (!args.get(0)->is_string() || !args.get(1)->is_string())
        type_error("replace() argument must be str");
      const std::string &old = args.get(0)->s, &repl = args.get(1)->s;
      if (repl.size() > old.size())
        in.check_size(s.size() + (s.size() / std::max<size_t>(old.size(), 1) + 1) *
                                     (repl.size() - old.size()));
      return Value::string(py::replace(s, old, repl, args.int_or(2, -1)));
    });
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count")
    return bound(self, name, [s, name](Interpreter&, CallArgs& a) {
      Args args(name, a, {"sub", "start", "end"}, 1);
      if (!args.get(0)->is_string())
        type_error(fmt::format("must be str, not {}", type_name(*args.get(0))));
      const std::string& sub = args.get(0)->s;
      auto [b, e] = byte_range(s, args, 1);
      if (name == "count")
        return Value::integer(
            b == std::string::npos ? 0 : py::count(std::string_view(s).substr(b, e - b), sub));
      size_t f = std::string::npos;
      if (b != std::string::npos && e - b >= sub.size()) {
        std::string_view hay = std::string_view(s).substr(b, e - b);
        f = name[0] == 'r' ? hay.rfind(sub) : hay.find(sub);
      }
      if (f == std::string::npos) {
        if (name == "index" || name == "rindex")
          raise_error(TemplateErrorKind::kValue, "substring not found");
        return Value::integer(-1);
      }
      return Value::integer(byte_to_index(s, b + f));
    });
  if (name == "join")
    return bound(self, name, [s](Interpreter& in, CallArgs& a) {
      Args args("join", a, {"iterable"}, 1);
      std::string out;
      List items = iterate(*args.get(0));
      for (size_t k = 0; k < items.size(); ++k) {
        if (!items[k].is_string())
          type_error(fmt::format("sequence item {}: expected str instance, {} found", k,
                                 type_name(items[k])));
        if (k) out += s;
        out += items[k].s;
        in.check_size(out.size());
      }
      return Value::string(std::move(out));
    });
  auto predicate = [&](bool (*fn)(char32_t)) {
    return bound(self, name, [s, name, fn](Interpreter&, CallArgs& a) {
      no_args(name, a);
      std::u32string u = py::decode(s);
      return Value::boolean(!u.empty() && std::all_of(u.begin(), u.end(), fn));
    });
  };
  if (name == "isdigit" || name == "isnumeric" || name == "isdecimal")
    return predicate(py::isdigit);
  if (name == "isalpha") return predicate(py::isalpha);
  if (name == "isalnum") return predicate(py::isalnum);
  if (name == "isspace") return predicate(py::isspace);
  if (name == "isascii")
    return bound(self, name, [s](Interpreter&, CallArgs& a) {
      no_args("isascii", a);
      return Value::boolean(py::is_ascii(s));
    });
  if (name == "isupper" || name == "islower")
    return bound(self, name, [s, name](Interpreter& in, CallArgs& a) {
      no_args(name, a);
      CallArgs none;
      return Value::boolean(name == "isupper" ? t_upper(in, Value::string(s), none)
                                              : t_lower(in, Value::string(s), none));
    });
  if (name == "center" || name == "ljust" || name == "rjust")
    return bound(self, name, [s, name](Interpreter& in, CallArgs& a) {
      Args args(name, a, {"width", "fillchar"}, 1);
      std::string fill = args.str_or(1, " ");
      if (py::length(fill) != 1)
        type_error("The fill character must be exactly one character long");
      int64_t width = args.int_or(0, 0), len = static_cast<int64_t>(py::length(s));
      if (name == "center") return Value::string(center(in, s, width, fill));
      if (width <= len) return Value::string(s);
      in.check_size(static_cast<size_t>(width));
      std::string pad;
      for (int64_t k = 0; k < width - len; ++k) pad += fill;
      return Value::string(name == "ljust" ? s + pad : pad + s);
    });
  if (name == "zfill")
    return bound(self, name, [s](Interpreter& in, CallArgs& a) {
      Args args("zfill", a, {"width"}, 1);
      int64_t width = args.int_or(0, 0), len = static_cast<int64_t>(py::length(s));
      if (width <= len) return Value::string(s);
      in.check_size(static_cast<size_t>(width));
      size_t sign = !s.empty() && (s[0] == '+' || s[0] == '-') ? 1 : 0;
      return Value::string(s.substr(0, sign) + std::string(static_cast<size_t>(width - len), '0') +
                           s.substr(sign));
    });
  if (name == "partition" || name == "rpartition")
    return bound(self, name, [s, name](Interpreter&, CallArgs& a) {
      Args args(name, a, {"sep"}, 1);
      if (!args.get(0)->is_string())
        type_error(fmt::format("must be str, not {}", type_name(*args.get(0))));
      const std::string& sep = args.get(0)->s;
      if (sep.empty()) raise_error(TemplateErrorKind::kValue, "empty separator");
      size_t f = name == "partition" ? s.find(sep) : s.rfind(sep);
      if (f == std::string::npos)
        return name == "partition"
                   ? Value::list({Value::string(s), Value::string(""), Value::string("")}, true)
                   : Value::list({Value::string(""), Value::string(""), Value::string(s)}, true);
      return Value::list({Value::string(s.substr(0, f)), Value::string(sep),
                          Value::string(s.substr(f + sep.size()))},
                         true);
    });
  if (name == "removeprefix" || name == "removesuffix")
    return bound(self, name, [s, name](Interpreter&, CallArgs& a) {
      Args args(name, a, {"affix"}, 1);
      if (!args.get(0)->is_string()) type_error(fmt::format("{}() argument must be str", name));
      const std::string& x = args.get(0)->s;
      if (name == "removeprefix" && s.compare(0, x.size(), x) == 0)
        return Value::string(s.substr(x.size()));
      if (name == "removesuffix" && !x.empty() && s.size() >= x.size() &&
          s.compare(s.size() - x.size(), x.size(), x) == 0)
        return Value::string(s.substr(0, s.size() - x.size()));
      return Value::string(s);
    });
  if (name == "format")
    return bound(self, name,
                 [s](Interpreter& in, CallArgs& a) { return Value::string(str_format(in, s, a)); });
  static const char* kOther[] = {"encode",      "expandtabs", "format_map", "isidentifier",
                                 "isprintable", "istitle",    "maketrans",  "translate"};
  for (const char* o : kOther)
    if (name == o)
      return bound(self, name, [name](Interpreter&, CallArgs&) -> Value {
        raise_error(TemplateErrorKind::kUnsupported,
                    fmt::format("str.{}() is not supported by this engine", name));
      });
  return std::nullopt;
}

Value unsafe(const Value& self, const std::string& name) {
  return Value::undefined(
      fmt::format("access to attribute '{}' of '{}' object is unsafe.", name, type_name(self)),
      true);
}

Value make_view(const Value& self, int which) {
  IteratorData d;
  d.reiterable = true;
  d.has_len = true;
  static const char* kNames[] = {"dict_keys", "dict_values", "dict_items"};
  d.type_name = kNames[which];
  for (const auto& [k, v] : self.dict_data().entries)
    d.items.push_back(which == 0 ? k : which == 1 ? v : Value::list({k, v}, true));
  d.repr = d.type_name + "(" + to_str(Value::list(d.items)) + ")";
  return Value::iterator(std::move(d));
}

std::optional<Value> dict_method(const Value& self, const std::string& name) {
  if (name == "clear" || name == "pop" || name == "popitem" || name == "setdefault" ||
      name == "update")
    return unsafe(self, name);
  if (name == "get")
    return bound(self, name, [self](Interpreter&, CallArgs& a) {
      Args args("get", a, {"key", "default"}, 1);
      const Value& key = *args.get(0);
      if ((key.is_list() && !key.tuple) || key.is_dict())
        type_error(fmt::format("unhashable type: '{}'", type_name(key)));
      if (const Value* v = self.dict_data().find(key)) return *v;
      return args.value_or(1, Value::none());
    });
  if (name == "keys" || name == "values" || name == "items")
    return bound(self, name, [self, name](Interpreter& in, CallArgs& a) {
      no_args(name, a);
      in.charge(static_cast<int64_t>(self.dict_data().entries.size()));
      return make_view(self, name == "keys" ? 0 : name == "values" ? 1 : 2);
    });
  if (name == "copy")
    return bound(self, name, [self](Interpreter&, CallArgs& a) {
      no_args("copy", a);
      return Value::dict(self.dict_data());
    });
  if (name == "fromkeys")
    return bound(self, name, [](Interpreter&, CallArgs& a) {
      Args args("fromkeys", a, {"iterable", "value"}, 1);
      Dict d;
      for (Value& k : iterate(*args.get(0))) d.set(std::move(k), args.value_or(1, Value::none()));
      return Value::dict(std::move(d));
    });
  return std::nullopt;
}

std::optional<Value> list_method(const Value& self, const std::string& name) {
  if (!self.tuple && (name == "append" || name == "clear" || name == "pop" || name == "reverse" ||
                      name == "insert" || name == "sort" || name == "extend" || name == "remove"))
    return unsafe(self, name);
  if (name == "index")
    return bound(self, name, [self](Interpreter&, CallArgs& a) {
      Args args("index", a, {"value", "start", "stop"}, 1);
      const List& items = self.items();
      for (size_t k = 0; k < items.size(); ++k)
        if (equals(items[k], *args.get(0))) return Value::integer(static_cast<int64_t>(k));
      raise_error(TemplateErrorKind::kValue, fmt::format("{} is not in list", repr(*args.get(0))));
    });
  if (name == "count")
    return bound(self, name, [self](Interpreter&, CallArgs& a) {
      Args args("count", a, {"value"}, 1);
      int64_t n = 0;
      for (const Value& v : self.items()) n += equals(v, *args.get(0)) ? 1 : 0;
      return Value::integer(n);
    });
  if (name == "copy" && !self.tuple)
    return bound(self, name, [self](Interpreter&, CallArgs& a) {
      no_args("copy", a);
      return Value::list(self.items());
    });
  return std::nullopt;
}

// ---- globals ---------------------------------------------------------------------------

// Python's datetime.strftime on Linux: glibc's strftime, with %f/%z/%Z handled by Python
// itself for a naive datetime (microseconds 0, no zone).
std::string strftime_python(Interpreter& in, const std::string& format, const DateTime& t) {
  std::string f;
  for (size_t k = 0; k < format.size(); ++k) {
    if (format[k] == '%' && k + 1 < format.size()) {
      char c = format[k + 1];
      if (c == 'f') {
        f += "000000";
        ++k;
        continue;
      }
      if (c == 'z' || c == 'Z') {
        ++k;
        continue;
      }
      f += format.substr(k, 2);
      ++k;
      continue;
    }
    f += format[k];
  }
  std::tm tm{};
  tm.tm_year = t.year - 1900;
  tm.tm_mon = t.month - 1;
  tm.tm_mday = t.day;
  tm.tm_hour = t.hour;
  tm.tm_min = t.minute;
  tm.tm_sec = t.second;
  std::time_t epoch = timegm(&tm);  // normalizes and fills wday/yday
  gmtime_r(&epoch, &tm);
  in.check_size(f.size() * 64);
  std::string out;
  // strftime cannot distinguish an empty result from a short buffer; render piecewise.
  std::vector<char> buf(f.size() * 64 + 64);
  size_t n = std::strftime(buf.data(), buf.size(), ("x" + f).c_str(), &tm);
  if (n > 0) out.assign(buf.data() + 1, n - 1);
  return out;
}

Value make_range(Interpreter& in, CallArgs& a) {
  if (!a.keywords.empty()) type_error("range() takes no keyword arguments");
  size_t n = a.positional.size();
  if (n < 1 || n > 3) type_error(fmt::format("range expected at least 1 argument, got {}", n));
  for (const Value& v : a.positional)
    if (!v.is_int())
      type_error(fmt::format("'{}' object cannot be interpreted as an integer", type_name(v)));
  int64_t start = n == 1 ? 0 : a.positional[0].as_int();
  int64_t stop = n == 1 ? a.positional[0].as_int() : a.positional[1].as_int();
  int64_t step = n == 3 ? a.positional[2].as_int() : 1;
  if (step == 0) raise_error(TemplateErrorKind::kValue, "range() arg 3 must not be zero");
  // The sandbox's MAX_RANGE.
  double count = step > 0 ? std::ceil((static_cast<double>(stop) - start) / step)
                          : std::ceil((static_cast<double>(start) - stop) / -step);
  if (count > 100000)
    raise_error(TemplateErrorKind::kOverflow,
                "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  IteratorData d;
  d.reiterable = true;
  d.has_len = true;
  d.type_name = "range";
  for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step)
    d.items.push_back(Value::integer(k));
  in.charge(static_cast<int64_t>(d.items.size()) / 16);
  d.repr = n == 3 && step != 1 ? fmt::format("range({}, {}, {})", start, stop, step)
                               : fmt::format("range({}, {})", start, stop);
  return Value::iterator(std::move(d));
}

Dict dict_from_args(CallArgs& a, const char* fname) {
  Dict d;
  if (a.positional.size() > 1)
    type_error(fmt::format("{} expected at most 1 argument, got {}", fname, a.positional.size()));
  if (!a.positional.empty()) {
    const Value& src = a.positional[0];
    if (src.is_dict()) {
      d = src.dict_data();
    } else {
      for (const Value& pair : iterate(src)) {
        List kv = iterate(pair);
        if (kv.size() != 2)
          raise_error(TemplateErrorKind::kValue,
                      "dictionary update sequence element has wrong length");
        d.set(kv[0], kv[1]);
      }
    }
  }
  for (auto& [k, v] : a.keywords) d.set(Value::string(k), v);
  return d;
}

}  // namespace

FilterFn find_filter(std::string_view name) {
  auto it = filters().find(name);
  return it == filters().end() ? nullptr : it->second;
}

TestFn find_test(std::string_view name) {
  auto it = tests().find(name);
  return it == tests().end() ? nullptr : it->second;
}

std::optional<Value> builtin_attribute(const Value& obj, const std::string& name) {
  switch (obj.type) {
    case Value::Type::kString:
      return string_method(obj, name);
    case Value::Type::kDict:
      return dict_method(obj, name);
    case Value::Type::kList:
      return list_method(obj, name);
    case Value::Type::kFloat:
      if (name == "is_integer")
        return bound(obj, name, [obj](Interpreter&, CallArgs& a) {
          no_args("is_integer", a);
          return Value::boolean(std::isfinite(obj.f) && std::trunc(obj.f) == obj.f);
        });
      if (name == "real") return obj;
      if (name == "imag") return Value::number(0.0);
      return std::nullopt;
    case Value::Type::kInt:
    case Value::Type::kBool:
      if (name == "real" || name == "numerator") return Value::integer(obj.as_int());
      if (name == "imag") return Value::integer(0);
      if (name == "denominator") return Value::integer(1);
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

std::unordered_map<std::string, Value> make_globals(const RenderOptions& options) {
  std::unordered_map<std::string, Value> g;
  g["range"] = Value::callable("range", "type", make_range);
  g["dict"] = Value::callable("dict", "type", [](Interpreter&, CallArgs& a) {
    return Value::dict(dict_from_args(a, "dict"));
  });
  g["namespace"] = Value::callable("namespace", "type", [](Interpreter&, CallArgs& a) {
    return Value::namespace_(dict_from_args(a, "namespace"));
  });
  g["joiner"] = Value::callable("joiner", "type", [](Interpreter&, CallArgs& a) {
    Args args("joiner", a, {"sep"});
    std::string sep = args.str_or(0, ", ");
    auto used = std::make_shared<bool>(false);
    return Value::callable("joiner", "method", [sep, used](Interpreter&, CallArgs&) {
      if (!*used) {
        *used = true;
        return Value::string("");
      }
      return Value::string(sep);
    });
  });
  g["raise_exception"] =
      Value::callable("raise_exception", "function", [](Interpreter&, CallArgs& a) -> Value {
        Args args("raise_exception", a, {"message"}, 1);
        raise_error(TemplateErrorKind::kRaised, to_str(*args.get(0)));
      });
  std::optional<DateTime> now = options.now;
  g["strftime_now"] =
      Value::callable("strftime_now", "function", [now](Interpreter& in, CallArgs& a) {
        Args args("strftime_now", a, {"format"}, 1);
        if (!args.get(0)->is_string())
          type_error("strftime() argument 1 must be str, not " + type_name(*args.get(0)));
        return Value::string(strftime_python(in, args.get(0)->s, now ? *now : DateTime::now()));
      });
  return g;
}

// ---- printf-style % ----------------------------------------------------------------------

std::string percent_format(const std::string& f, const Value& args) {
  std::vector<Value> positional;
  const Dict* mapping = nullptr;
  // Python treats any non-tuple argument with __getitem__ (dict, list, Undefined) as a
  // mapping candidate: unused, it raises no "not all arguments converted".
  bool mapping_like = false;
  if (args.is_list() && args.tuple) {
    positional = args.items();
  } else {
    positional.push_back(args);
    if (args.is_dict()) mapping = &args.dict_data();
    mapping_like = args.is_dict() || args.is_list() || args.is_undefined();
  }
  size_t next = 0;
  bool used_mapping = false;
  std::string out;
  for (size_t k = 0; k < f.size(); ++k) {
    if (f[k] != '%') {
      out += f[k];
      continue;
    }
    if (++k >= f.size()) raise_error(TemplateErrorKind::kValue, "incomplete format");
    Value v;
    bool have_value = false;
    if (f[k] == '(') {
      size_t e = f.find(')', k);
      if (e == std::string::npos) raise_error(TemplateErrorKind::kValue, "incomplete format key");
      if (!mapping) type_error("format requires a mapping");
      const Value* found = mapping->find(std::string_view(f).substr(k + 1, e - k - 1));
      if (!found)
        raise_error(TemplateErrorKind::kValue, "KeyError: '" + f.substr(k + 1, e - k - 1) + "'");
      v = *found;
      have_value = used_mapping = true;
      k = e + 1;
    }
    std::string flags;
    while (k < f.size() && std::string_view("-+ #0").find(f[k]) != std::string_view::npos)
      flags += f[k++];
    std::string width, precision;
    auto take_star = [&](std::string& dst) {
      if (next >= positional.size() || !positional[next].is_int()) type_error("* wants int");
      dst = std::to_string(std::min<int64_t>(positional[next++].as_int(), 100000));
      ++k;
    };
    if (k < f.size() && f[k] == '*') {
      take_star(width);
    } else {
      while (k < f.size() && std::isdigit(static_cast<unsigned char>(f[k]))) width += f[k++];
    }
    if (k < f.size() && f[k] == '.') {
      ++k;
      precision = "0";
      if (k < f.size() && f[k] == '*') {
        take_star(precision);
      } else {
        std::string p;
        while (k < f.size() && std::isdigit(static_cast<unsigned char>(f[k]))) p += f[k++];
        if (!p.empty()) precision = p;
      }
    }
    while (k < f.size() && (f[k] == 'l' || f[k] == 'h' || f[k] == 'L')) ++k;
    if (k >= f.size()) raise_error(TemplateErrorKind::kValue, "incomplete format");
    char conv = f[k];
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (width.size() > 6 || precision.size() > 6)
      raise_error(TemplateErrorKind::kValue, "width or precision too big");
    if (!have_value) {
      if (next >= positional.size()) type_error("not enough arguments for format string");
      v = positional[next++];
    }
    std::string body;
    bool left = flags.find('-') != std::string::npos;
    switch (conv) {
      case 's':
      case 'r':
      case 'a': {
        body = conv == 's' ? to_str(v) : repr(v);
        if (!precision.empty())
          body = py::encode(py::decode(body).substr(0, std::stoul(precision)));
        break;
      }
      case 'd':
      case 'i':
      case 'u':
      case 'x':
      case 'X':
      case 'o':
      case 'c': {
        if (v.is_undefined()) fail_undefined(v);
        if (conv == 'c') {
          if (v.is_string() && py::length(v.s) == 1) {
            body = v.s;
          } else if (v.is_int()) {
            py::append_utf8(body, static_cast<char32_t>(v.as_int()));
          } else {
            type_error("%c requires int or char");
          }
          break;
        }
        if (!v.is_number())
          type_error(fmt::format(
              "%{} format: {} is required, not {}", conv,
              conv == 'd' || conv == 'i' || conv == 'u' ? "a real number" : "an integer",
              type_name(v)));
        long long x = v.is_int() ? v.as_int() : static_cast<long long>(std::trunc(v.as_double()));
        std::string spec = "%" + flags + width + (precision.empty() ? "" : "." + precision) + "ll" +
                           (conv == 'i' || conv == 'u' ? 'd' : conv);
        char buf[256];
        std::snprintf(buf, sizeof buf, spec.c_str(), x);
        out += buf;
        continue;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
        if (v.is_undefined()) fail_undefined(v);
        if (!v.is_number()) type_error(fmt::format("must be real number, not {}", type_name(v)));
        std::string spec = "%" + flags + width + "." + (precision.empty() ? "6" : precision) + conv;
        std::vector<char> buf(512 + std::stoul(width.empty() ? "0" : width) +
                              std::stoul(precision.empty() ? "6" : precision));
        std::snprintf(buf.data(), buf.size(), spec.c_str(), v.as_double());
        out += buf.data();
        continue;
      }
      default:
        raise_error(TemplateErrorKind::kValue,
                    fmt::format("unsupported format character '{}'", conv));
    }
    int64_t w = width.empty() ? 0 : std::stoll(width);
    int64_t len = static_cast<int64_t>(py::length(body));
    if (len < w)
      body = left ? body + std::string(static_cast<size_t>(w - len), ' ')
                  : std::string(static_cast<size_t>(w - len), ' ') + body;
    out += body;
  }
  if (!used_mapping && !mapping_like && next < positional.size())
    type_error("not all arguments converted during string formatting");
  return out;
}

}  // namespace loupe::chat
