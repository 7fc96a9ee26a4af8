#include "chat/interpreter.h"

#include <climits>

#include "chat/builtins.h"
#include "chat/pystr.h"

namespace loupe::chat {
namespace {

// Statement and expression nesting across macro calls; keeps the C++ stack bounded.
constexpr int kMaxEvalDepth = 1000;

std::shared_ptr<Scope> child(const std::shared_ptr<Scope>& parent) {
  auto s = std::make_shared<Scope>();
  s->parent = parent;
  return s;
}

struct DepthGuard {
  int& depth;
  explicit DepthGuard(int& d) : depth(d) {
    if (++depth > kMaxEvalDepth) {
      --depth;
      raise_error(TemplateErrorKind::kLimit, "maximum recursion depth exceeded while rendering");
    }
  }
  ~DepthGuard() { --depth; }
};

void locate(TemplateException& e, int line, int column) {
  if (e.line == 0) {
    e.line = line;
    e.column = column;
  }
}

[[noreturn]] void overflow() {
  raise_error(TemplateErrorKind::kOverflow,
              "integer result does not fit in 64 bits (Python ints are unbounded)");
}

int64_t floor_div(int64_t a, int64_t b) {
  if (a == INT64_MIN && b == -1) overflow();
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t floor_mod(int64_t a, int64_t b) {
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

double float_mod(double a, double b) {
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  if (r == 0) r = std::copysign(0.0, b);
  return r;
}

}  // namespace

Interpreter::Interpreter(std::shared_ptr<const Program> program, const RenderOptions& options)
    : program_(std::move(program)), options_(options), globals_(make_globals(options)) {}

std::string Interpreter::render(const Value& context) {
  auto root = std::make_shared<Scope>();
  for (const auto& [k, v] : context.dict_data().entries)
    if (k.is_string()) root->vars[k.s] = v;
  root_ = root;
  std::string out;
  out_ = &out;
  exec_block(program_->body, root);
  out_ = nullptr;
  return out;
}

void Interpreter::charge(int64_t n) {
  steps_ += n;
  if (steps_ > options_.max_steps)
    raise_error(
        TemplateErrorKind::kLimit,
        fmt::format("template exceeded {} loop iterations and filter steps", options_.max_steps));
}

void Interpreter::check_size(size_t n) const {
  if (n > options_.max_output_bytes)
    raise_error(TemplateErrorKind::kLimit,
                fmt::format("a value of {} bytes or items exceeds the limit of {}", n,
                            options_.max_output_bytes));
}

void Interpreter::write(const std::string& text) {
  if (out_->size() + text.size() > options_.max_output_bytes)
    raise_error(
        TemplateErrorKind::kLimit,
        fmt::format("rendered output exceeds the limit of {} bytes", options_.max_output_bytes));
  out_->append(text);
}

Interpreter::Flow Interpreter::exec_block(const std::vector<StmtPtr>& body,
                                          const std::shared_ptr<Scope>& scope) {
  for (const StmtPtr& s : body) {
    Flow f = exec(*s, scope);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

std::string Interpreter::capture(const std::vector<StmtPtr>& body,
                                 const std::shared_ptr<Scope>& scope) {
  std::string buffer;
  std::string* saved = out_;
  out_ = &buffer;
  try {
    exec_block(body, scope);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return buffer;
}

// Applies a filter chain whose innermost value is `base` ({% filter %} and {% set x | f %}).
static Value apply_chain(Interpreter& in, const Expr& e, Value base,
                         const std::function<CallArgs(const Expr&)>& args_of) {
  if (e.kind != ExprKind::kFilter) return base;
  Value inner =
      e.children[0] ? apply_chain(in, *e.children[0], std::move(base), args_of) : std::move(base);
  CallArgs args = args_of(e);
  return in.apply_filter(e.name, inner, args);
}

Interpreter::Flow Interpreter::exec(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  DepthGuard guard(eval_depth_);
  try {
    auto args_of = [&](const Expr& e) { return eval_args(e, 1, scope); };
    switch (s.kind) {
      case StmtKind::kText:
        write(s.text);
        break;
      case StmtKind::kOutput:
        write(to_str(eval(*s.expr, scope)));
        break;
      case StmtKind::kIf:
        return truthy(eval(*s.expr, scope)) ? exec_block(s.body, scope)
                                            : exec_block(s.else_body, scope);
      case StmtKind::kFor:
        return exec_for(s, scope);
      case StmtKind::kSet:
        assign(*s.target, eval(*s.expr, scope), *scope, scope);
        break;
      case StmtKind::kSetBlock: {
        Value v = Value::string(capture(s.body, child(scope)));
        if (s.expr) v = apply_chain(*this, *s.expr, std::move(v), args_of);
        assign(*s.target, v, *scope, scope);
        break;
      }
      case StmtKind::kMacro:
        scope->vars[s.name] = make_macro(s, scope);
        break;
      case StmtKind::kCallBlock: {
        const Expr& call_expr = *s.expr;
        Value callee = eval(*call_expr.children[0], scope);
        CallArgs args = eval_args(call_expr, 1, scope);
        args.keywords.emplace_back("caller", make_macro(s, scope));
        write(to_str(call(callee, args)));
        break;
      }
      case StmtKind::kFilterBlock: {
        Value body = Value::string(capture(s.body, child(scope)));
        write(to_str(apply_chain(*this, *s.expr, std::move(body), args_of)));
        break;
      }
      case StmtKind::kWith:
        exec_with(s, scope);
        break;
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
      case StmtKind::kUnsupported:
        raise_error(
            TemplateErrorKind::kUnsupported,
            fmt::format("'{}' needs a template loader; chat templates render without one", s.name));
    }
  } catch (TemplateException& e) {
    locate(e, s.line, s.column);
    throw;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec_for(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  List items = iterate(eval(*s.expr, scope));
  if (s.cond) {
    List kept;
    for (Value& item : items) {
      charge(1);
      auto tmp = child(scope);
      assign(*s.target, item, *tmp, tmp);
      if (truthy(eval(*s.cond, tmp))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec_block(s.else_body, child(scope));
  auto data = std::make_shared<LoopData>();
  data->items = std::make_shared<const List>(std::move(items));
  Value loop_value = Value::loop(data);
  for (size_t k = 0; k < data->items->size(); ++k) {
    charge(1);
    data->index0 = k;
    auto iteration = child(scope);
    assign(*s.target, (*data->items)[k], *iteration, iteration);
    iteration->vars["loop"] = loop_value;
    if (exec_block(s.body, iteration) == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

void Interpreter::exec_with(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  auto inner = child(scope);
  for (const auto& [target, value] : s.assignments)
    assign(*target, eval(*value, scope), *inner, inner);
  exec_block(s.body, inner);
}

void Interpreter::assign(const Expr& target, const Value& value, Scope& scope,
                         const std::shared_ptr<Scope>& lookup_scope) {
  switch (target.kind) {
    case ExprKind::kName:
      scope.vars[target.name] = value;
      return;
    case ExprKind::kTuple: {
      List items = iterate(value);
      size_t n = target.children.size();
      if (items.size() < n)
        raise_error(
            TemplateErrorKind::kValue,
            fmt::format("not enough values to unpack (expected {}, got {})", n, items.size()));
      if (items.size() > n)
        raise_error(TemplateErrorKind::kValue,
                    fmt::format("too many values to unpack (expected {})", n));
      for (size_t k = 0; k < n; ++k) assign(*target.children[k], items[k], scope, lookup_scope);
      return;
    }
    case ExprKind::kGetAttr: {
      Value ns = lookup(target.children[0]->name, *lookup_scope);
      if (ns.type != Value::Type::kNamespace)
        raise_error(TemplateErrorKind::kRuntime, "cannot assign attribute on non-namespace object");
      ns.namespace_data().set(Value::string(target.name), value);
      return;
    }
    default:
      raise_error(TemplateErrorKind::kSyntax, "cannot assign to this expression");
  }
}

Value Interpreter::make_macro(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  const Stmt* m = &s;
  // A weak reference: the scope holds the macro, so a strong one would be a cycle.
  std::weak_ptr<Scope> weak = scope;
  return Value::callable(s.name, "Macro", [m, weak](Interpreter& in, CallArgs& args) {
    std::shared_ptr<Scope> def_scope = weak.lock();
    return in.call_macro(*m, def_scope ? def_scope : in.root_, args, nullptr);
  });
}

Value Interpreter::call_macro(const Stmt& m, const std::shared_ptr<Scope>& def_scope,
                              CallArgs& args, const Value* caller) {
  if (call_depth_ >= options_.max_call_depth)
    raise_error(
        TemplateErrorKind::kLimit,
        fmt::format("maximum recursion depth exceeded: macro '{}' nested deeper than {} calls",
                    m.name, options_.max_call_depth));
  ++call_depth_;
  struct Leave {
    int& depth;
    ~Leave() { --depth; }
  } leave{call_depth_};

  auto scope = child(def_scope);
  size_t n_params = m.params.size();
  if (args.positional.size() > n_params && !m.uses_varargs)
    type_error(fmt::format("macro '{}' takes not more than {} argument(s)", m.name, n_params));
  std::vector<bool> bound(n_params, false);
  for (size_t k = 0; k < n_params && k < args.positional.size(); ++k) {
    scope->vars[m.params[k]] = args.positional[k];
    bound[k] = true;
  }
  Dict kwargs;
  Value caller_value = caller ? *caller : Value::undefined("No caller defined");
  for (auto& [key, value] : args.keywords) {
    size_t idx = std::find(m.params.begin(), m.params.end(), key) - m.params.begin();
    if (idx < n_params) {
      if (bound[idx])
        type_error(fmt::format("macro '{}' got multiple values for argument '{}'", m.name, key));
      scope->vars[key] = value;
      bound[idx] = true;
    } else if (key == "caller" && m.uses_caller) {
      caller_value = value;
    } else if (m.uses_kwargs) {
      kwargs.set(Value::string(key), value);
    } else {
      type_error(fmt::format("macro '{}' takes no keyword argument '{}'", m.name, key));
    }
  }
  for (size_t k = 0; k < n_params; ++k) {
    if (bound[k]) continue;
    scope->vars[m.params[k]] =
        m.defaults[k]
            ? eval(*m.defaults[k], scope)
            : Value::undefined(fmt::format("parameter '{}' was not provided", m.params[k]));
  }
  if (m.uses_varargs) {
    List extra;
    for (size_t k = n_params; k < args.positional.size(); ++k) extra.push_back(args.positional[k]);
    scope->vars["varargs"] = Value::list(std::move(extra), true);
  }
  if (m.uses_kwargs) scope->vars["kwargs"] = Value::dict(std::move(kwargs));
  if (m.uses_caller) scope->vars["caller"] = caller_value;
  return Value::string(capture(m.body, scope));
}

Value Interpreter::lookup(const std::string& name, const Scope& scope) const {
  if (const Value* v = scope.lookup(name)) return *v;
  auto it = globals_.find(name);
  if (it != globals_.end()) return it->second;
  return Value::undefined(fmt::format("'{}' is undefined", name));
}

Value Interpreter::call(const Value& callee, CallArgs& args) {
  if (callee.type == Value::Type::kCallable) return callee.callable_data().fn(*this, args);
  if (callee.is_undefined()) fail_undefined(callee);
  type_error(fmt::format("'{}' object is not callable", type_name(callee)));
}

namespace {

// What Python's getattr(obj, name) finds on the builtin types; nullopt for AttributeError.
std::optional<Value> python_getattr(const Value& obj, const std::string& name) {
  if (name.size() >= 2 && name[0] == '_' && name[1] == '_')
    return Value::undefined(
        fmt::format("access to attribute '{}' of '{}' object is unsafe.", name, type_name(obj)),
        true);
  if (obj.type == Value::Type::kNamespace) {
    if (const Value* v = obj.namespace_data().find(name)) return *v;
    return std::nullopt;
  }
  if (obj.type == Value::Type::kLoop) {
    std::shared_ptr<LoopData> data = std::static_pointer_cast<LoopData>(obj.ptr);
    const List& items = *data->items;
    int64_t n = static_cast<int64_t>(items.size()), i = static_cast<int64_t>(data->index0);
    if (name == "index") return Value::integer(i + 1);
    if (name == "index0") return Value::integer(i);
    if (name == "revindex") return Value::integer(n - i);
    if (name == "revindex0") return Value::integer(n - i - 1);
    if (name == "first") return Value::boolean(i == 0);
    if (name == "last") return Value::boolean(i == n - 1);
    if (name == "length") return Value::integer(n);
    if (name == "depth") return Value::integer(data->depth0 + 1);
    if (name == "depth0") return Value::integer(data->depth0);
    if (name == "previtem")
      return i > 0 ? items[i - 1] : Value::undefined("there is no previous item");
    if (name == "nextitem")
      return i + 1 < n ? items[i + 1] : Value::undefined("there is no next item");
    if (name == "cycle")
      return Value::callable("cycle", "method", [data](Interpreter&, CallArgs& args) {
        if (args.positional.empty()) type_error("no items for cycling given");
        return args.positional[data->index0 % args.positional.size()];
      });
    if (name == "changed")
      return Value::callable("changed", "method", [data](Interpreter&, CallArgs& args) {
        bool same = data->has_changed && data->last_changed.size() == args.positional.size();
        for (size_t k = 0; same && k < args.positional.size(); ++k)
          same = equals(data->last_changed[k], args.positional[k]);
        data->has_changed = true;
        data->last_changed = args.positional;
        return Value::boolean(!same);
      });
    return std::nullopt;
  }
  return builtin_attribute(obj, name);
}

}  // namespace

Value Interpreter::get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (std::optional<Value> v = python_getattr(obj, name)) return *v;
  if (obj.is_dict())
    if (const Value* v = obj.dict_data().find(name)) return *v;
  return Value::undefined(fmt::format("'{}' has no attribute '{}'", object_type_repr(obj), name));
}

Value Interpreter::get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail_undefined(obj);
  switch (obj.type) {
    case Value::Type::kDict:
      if (const Value* v = obj.dict_data().find(key)) return *v;
      break;
    case Value::Type::kList:
      if (key.is_int()) {
        const List& items = obj.items();
        int64_t k = key.as_int(), n = static_cast<int64_t>(items.size());
        if (k < 0) k += n;
        if (k >= 0 && k < n) return items[k];
      }
      break;
    case Value::Type::kString:
      if (key.is_int()) {
        std::u32string u = py::decode(obj.s);
        int64_t k = key.as_int(), n = static_cast<int64_t>(u.size());
        if (k < 0) k += n;
        if (k >= 0 && k < n) return Value::string(py::encode(u.substr(k, 1)));
      }
      break;
    default:
      break;
  }
  if (key.is_string()) {
    if (std::optional<Value> v = python_getattr(obj, key.s)) return *v;
    return Value::undefined(
        fmt::format("'{}' has no attribute '{}'", object_type_repr(obj), key.s));
  }
  return Value::undefined(fmt::format("{} has no element {}", object_type_repr(obj), repr(key)));
}

Value Interpreter::slice(const Value& obj, const Value& start, const Value& stop, const Value& step,
                         bool constant) {
  if (obj.is_undefined()) fail_undefined(obj);
  auto index = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_none()) return std::nullopt;
    if (!v.is_int())
      type_error("slice indices must be integers or None or have an __index__ method");
    return v.as_int();
  };
  std::optional<int64_t> a = index(start), b = index(stop), c = index(step);
  if (constant && obj.type != Value::Type::kList && obj.type != Value::Type::kString) {
    // Folded at compile time through environment.getitem, which turns the error into undefined.
    auto part = [](const std::optional<int64_t>& x) {
      return x ? std::to_string(*x) : std::string("None");
    };
    return Value::undefined(fmt::format("{} has no element slice({}, {}, {})",
                                        object_type_repr(obj), part(a), part(b), part(c)));
  }
  // Otherwise jinja2 compiles a slice to a plain Python subscript, not environment.getitem.
  if (obj.is_dict()) type_error("unhashable type: 'slice'");
  if (obj.type != Value::Type::kList && obj.type != Value::Type::kString)
    type_error(fmt::format("'{}' object is not subscriptable", type_name(obj)));
  int64_t st = c.value_or(1);
  if (st == 0) raise_error(TemplateErrorKind::kValue, "slice step cannot be zero");
  std::u32string u;
  int64_t n;
  if (obj.is_string()) {
    u = py::decode(obj.s);
    n = static_cast<int64_t>(u.size());
  } else {
    n = static_cast<int64_t>(obj.items().size());
  }
  auto adjust = [&](std::optional<int64_t> x, bool is_start) {
    if (!x) return st < 0 ? (is_start ? n - 1 : -1) : (is_start ? 0 : n);
    int64_t v = *x;
    if (v < 0) {
      v += n;
      if (v < 0) v = st < 0 ? -1 : 0;
    } else if (v >= n) {
      v = st < 0 ? n - 1 : n;
    }
    return v;
  };
  int64_t lo = adjust(a, true), hi = adjust(b, false);
  std::vector<int64_t> picks;
  for (int64_t k = lo; st > 0 ? k < hi : k > hi; k += st) picks.push_back(k);
  charge(static_cast<int64_t>(picks.size()) / 64);
  if (obj.is_string()) {
    std::u32string r;
    for (int64_t k : picks) r.push_back(u[k]);
    return Value::string(py::encode(r));
  }
  List r;
  for (int64_t k : picks) r.push_back(obj.items()[k]);
  return Value::list(std::move(r), obj.tuple);
}

Value Interpreter::apply_filter(const std::string& name, const Value& value, CallArgs& args) {
  FilterFn f = find_filter(name);
  if (f == nullptr)
    raise_error(TemplateErrorKind::kRuntime, fmt::format("No filter named '{}'.", name));
  charge(1);
  return f(*this, value, args);
}

bool Interpreter::apply_test(const std::string& name, const Value& value, CallArgs& args) {
  TestFn t = find_test(name);
  if (t == nullptr)
    raise_error(TemplateErrorKind::kRuntime, fmt::format("No test named '{}'.", name));
  charge(1);
  return t(*this, value, args);
}

CallArgs Interpreter::eval_args(const Expr& e, size_t first, const std::shared_ptr<Scope>& scope) {
  CallArgs args;
  for (size_t k = first; k < e.children.size(); ++k)
    args.positional.push_back(eval(*e.children[k], scope));
  for (const auto& [key, value] : e.kwargs) args.keywords.emplace_back(key, eval(*value, scope));
  return args;
}

Value Interpreter::eval(const Expr& e, const std::shared_ptr<Scope>& scope) {
  DepthGuard guard(eval_depth_);
  try {
    return eval_inner(e, scope);
  } catch (TemplateException& ex) {
    locate(ex, e.line, e.column);
    throw;
  }
}

Value Interpreter::eval_inner(const Expr& e, const std::shared_ptr<Scope>& scope) {
  switch (e.kind) {
    case ExprKind::kLiteral:
      return e.literal;
    case ExprKind::kName:
      return lookup(e.name, *scope);
    case ExprKind::kList:
    case ExprKind::kTuple: {
      List items;
      for (const auto& c : e.children) items.push_back(eval(*c, scope));
      return Value::list(std::move(items), e.kind == ExprKind::kTuple);
    }
    case ExprKind::kDict: {
      Dict d;
      for (size_t k = 0; k + 1 < e.children.size(); k += 2) {
        Value key = eval(*e.children[k], scope);
        if (key.is_list() && !key.tuple) type_error("unhashable type: 'list'");
        if (key.is_dict()) type_error("unhashable type: 'dict'");
        d.set(std::move(key), eval(*e.children[k + 1], scope));
      }
      return Value::dict(std::move(d));
    }
    case ExprKind::kGetAttr:
      return get_attr(eval(*e.children[0], scope), e.name);
    case ExprKind::kGetItem: {
      Value obj = eval(*e.children[0], scope);
      return get_item(obj, eval(*e.children[1], scope));
    }
    case ExprKind::kSlice: {
      Value obj = eval(*e.children[0], scope);
      Value parts[3];
      for (int k = 0; k < 3; ++k)
        parts[k] = e.children[k + 1] ? eval(*e.children[k + 1], scope) : Value::none();
      return slice(obj, parts[0], parts[1], parts[2], e.constant);
    }
    case ExprKind::kCall: {
      Value callee = eval(*e.children[0], scope);
      CallArgs args = eval_args(e, 1, scope);
      return call(callee, args);
    }
    case ExprKind::kFilter: {
      Value value = e.children[0] ? eval(*e.children[0], scope) : Value::none();
      CallArgs args = eval_args(e, 1, scope);
      return apply_filter(e.name, value, args);
    }
    case ExprKind::kTest: {
      Value value = eval(*e.children[0], scope);
      CallArgs args = eval_args(e, 1, scope);
      bool r = apply_test(e.name, value, args);
      return Value::boolean(e.negated ? !r : r);
    }
    case ExprKind::kNeg:
    case ExprKind::kPos: {
      Value v = eval(*e.children[0], scope);
      bool neg = e.kind == ExprKind::kNeg;
      if (v.is_undefined()) fail_undefined(v);
      if (v.is_int()) {
        if (neg && v.as_int() == INT64_MIN) overflow();
        return Value::integer(neg ? -v.as_int() : v.as_int());
      }
      if (v.type == Value::Type::kFloat) return Value::number(neg ? -v.f : v.f);
      type_error(fmt::format("bad operand type for unary {}: '{}'", neg ? "-" : "+", type_name(v)));
    }
    case ExprKind::kNot:
      return Value::boolean(!truthy(eval(*e.children[0], scope)));
    case ExprKind::kAnd: {
      Value a = eval(*e.children[0], scope);
      return truthy(a) ? eval(*e.children[1], scope) : a;
    }
    case ExprKind::kOr: {
      Value a = eval(*e.children[0], scope);
      return truthy(a) ? a : eval(*e.children[1], scope);
    }
    case ExprKind::kBinary: {
      Value a = eval(*e.children[0], scope);
      Value b = eval(*e.children[1], scope);
      return binary(e.name, a, b);
    }
    case ExprKind::kConcat: {
      std::string s;
      for (const auto& c : e.children) {
        s += to_str(eval(*c, scope));
        check_size(s.size());
      }
      charge(static_cast<int64_t>(s.size() >> 12));
      return Value::string(std::move(s));
    }
    case ExprKind::kCompare: {
      Value left = eval(*e.children[0], scope);
      for (size_t k = 0; k < e.ops.size(); ++k) {
        Value right = eval(*e.children[k + 1], scope);
        const std::string& op = e.ops[k];
        bool r;
        if (op == "==") {
          r = equals(left, right);
        } else if (op == "!=") {
          r = !equals(left, right);
        } else if (op == "in") {
          r = contains(right, left);
        } else if (op == "notin") {
          r = !contains(right, left);
        } else {
          int c = compare(left, right, op.c_str());
          r = op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
        }
        if (!r) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case ExprKind::kCond: {
      if (truthy(eval(*e.children[1], scope))) return eval(*e.children[0], scope);
      if (e.children[2]) return eval(*e.children[2], scope);
      return Value::undefined(fmt::format(
          "the inline if-expression on line {} evaluated to false and no else section was defined.",
          e.line));
    }
  }
  return Value::none();
}

Value Interpreter::binary(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined() && !(op == "%" && a.is_string())) fail_undefined(b);
  auto unsupported = [&]() -> Value {
    type_error(fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, type_name(a),
                           type_name(b)));
  };
  bool nums = a.is_number() && b.is_number();
  bool ints = a.is_int() && b.is_int();
  char c0 = op[0];
  if (op == "+") {
    if (ints) {
      int64_t r;
      if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) overflow();
      return Value::integer(r);
    }
    if (nums) return Value::number(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string() && (a.markup || b.markup)) {
      // markupsafe: Markup + str escapes the str, and so does str + Markup (Markup.__radd__).
      std::string r = (a.markup ? a.s : html_escape(a.s)) + (b.markup ? b.s : html_escape(b.s));
      check_size(r.size());
      return Value::markup_string(std::move(r));
    }
    if (a.is_string()) {
      if (!b.is_string()) {
        if (a.markup) return unsupported();
        type_error(fmt::format("can only concatenate str (not \"{}\") to str", type_name(b)));
      }
      check_size(a.s.size() + b.s.size());
      charge(static_cast<int64_t>((a.s.size() + b.s.size()) >> 12));
      return Value::string(a.s + b.s);
    }
    if (a.is_list()) {
      if (!b.is_list() || a.tuple != b.tuple)
        type_error(fmt::format("can only concatenate {} (not \"{}\") to {}", type_name(a),
                               type_name(b), type_name(a)));
      check_size(a.items().size() + b.items().size());
      charge(static_cast<int64_t>(a.items().size() + b.items().size()) / 64);
      List r = a.items();
      r.insert(r.end(), b.items().begin(), b.items().end());
      return Value::list(std::move(r), a.tuple);
    }
    return unsupported();
  }
  if (op == "-") {
    if (ints) {
      int64_t r;
      if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) overflow();
      return Value::integer(r);
    }
    if (nums) return Value::number(a.as_double() - b.as_double());
    return unsupported();
  }
  if (op == "*") {
    if (ints) {
      int64_t r;
      if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) overflow();
      return Value::integer(r);
    }
    if (nums) return Value::number(a.as_double() * b.as_double());
    const Value* seq =
        a.is_string() || a.is_list() ? &a : (b.is_string() || b.is_list() ? &b : nullptr);
    const Value* count = seq == &a ? &b : &a;
    if (seq == nullptr) return unsupported();
    if (!count->is_int())
      type_error(fmt::format("can't multiply sequence by non-int of type '{}'", type_name(*count)));
    int64_t n = std::max<int64_t>(0, count->as_int());
    size_t unit = seq->is_string() ? seq->s.size() : seq->items().size();
    if (unit != 0 && static_cast<uint64_t>(n) > options_.max_output_bytes / unit)
      raise_error(
          TemplateErrorKind::kLimit,
          fmt::format("repeating a {} of length {} {} times exceeds the limit of {} bytes or items",
                      type_name(*seq), unit, n, options_.max_output_bytes));
    charge(static_cast<int64_t>(unit * n) >> 12);
    if (seq->is_string()) {
      std::string r;
      r.reserve(unit * n);
      for (int64_t k = 0; k < n; ++k) r += seq->s;
      return seq->markup ? Value::markup_string(std::move(r)) : Value::string(std::move(r));
    }
    List r;
    for (int64_t k = 0; k < n; ++k) r.insert(r.end(), seq->items().begin(), seq->items().end());
    return Value::list(std::move(r), seq->tuple);
  }
  if (op == "/") {
    if (!nums) return unsupported();
    if (b.as_double() == 0) raise_error(TemplateErrorKind::kZeroDivision, "division by zero");
    return Value::number(a.as_double() / b.as_double());
  }
  if (op == "//") {
    if (!nums) return unsupported();
    if (ints) {
      if (b.as_int() == 0)
        raise_error(TemplateErrorKind::kZeroDivision, "integer division or modulo by zero");
      return Value::integer(floor_div(a.as_int(), b.as_int()));
    }
    if (b.as_double() == 0)
      raise_error(TemplateErrorKind::kZeroDivision, "float floor division by zero");
    return Value::number(std::floor(a.as_double() / b.as_double()));
  }
  if (c0 == '%') {
    if (a.is_string()) {
      if (a.markup) {
        // Markup % args escapes str arguments.
        auto esc = [](const Value& x) {
          return x.is_string() && !x.markup ? Value::string(html_escape(x.s)) : x;
        };
        Value args = b;
        if (b.is_list() && b.tuple) {
          List items;
          for (const Value& x : b.items()) items.push_back(esc(x));
          args = Value::list(std::move(items), true);
        } else if (!b.is_dict()) {
          args = esc(b);
        }
        std::string r = percent_format(a.s, args);
        check_size(r.size());
        return Value::markup_string(std::move(r));
      }
      std::string r = percent_format(a.s, b);
      check_size(r.size());
      return Value::string(std::move(r));
    }
    if (!nums) return unsupported();
    if (ints) {
      if (b.as_int() == 0) raise_error(TemplateErrorKind::kZeroDivision, "integer modulo by zero");
      return Value::integer(floor_mod(a.as_int(), b.as_int()));
    }
    if (b.as_double() == 0) raise_error(TemplateErrorKind::kZeroDivision, "float modulo");
    return Value::number(float_mod(a.as_double(), b.as_double()));
  }
  if (op == "**") {
    if (!nums) return unsupported();
    if (ints && b.as_int() >= 0) {
      int64_t base = a.as_int(), e = b.as_int(), r = 1;
      while (e > 0) {
        if (e & 1)
          if (__builtin_mul_overflow(r, base, &r)) overflow();
        e >>= 1;
        if (e > 0 && __builtin_mul_overflow(base, base, &base)) overflow();
      }
      return Value::integer(r);
    }
    if (a.as_double() == 0 && b.as_double() < 0)
      raise_error(TemplateErrorKind::kZeroDivision, "0.0 cannot be raised to a negative power");
    return Value::number(std::pow(a.as_double(), b.as_double()));
  }
  return unsupported();
}

}  // namespace loupe::chat
