#include "chat/parser.h"

#include <initializer_list>

#include "chat/lexer.h"

namespace loupe::chat {
namespace {

class Parser {
 public:
  Parser(std::vector<Token> tokens, const TemplateOptions& options)
      : toks_(std::move(tokens)), max_nesting_(options.max_nesting) {}

  std::vector<StmtPtr> parse_all() {
    std::vector<StmtPtr> body = subparse({});
    if (cur().type != TokenType::kEof) fail(cur(), "unexpected tag");
    return body;
  }

 private:
  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int max_nesting_;
  int loop_depth_ = 0;
  std::vector<std::string> open_blocks_;  // for "the innermost block that needs to be closed"

  // Bounds recursion so that deeply nested input is a syntax error, not a stack overflow.
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > p.max_nesting_) p.fail(p.cur(), "template nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
  };

  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t n = 1) const { return toks_[std::min(pos_ + n, toks_.size() - 1)]; }
  void next() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }

  [[noreturn]] void fail(const Token& t, std::string message) const {
    throw TemplateException{TemplateErrorKind::kSyntax, std::move(message), t.line, t.column};
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokenType::kEof:
        return "end of template";
      case TokenType::kBlockEnd:
        return "end of statement block";
      case TokenType::kVariableEnd:
        return "end of print statement";
      case TokenType::kBlockBegin:
        return "begin of statement block";
      case TokenType::kVariableBegin:
        return "begin of print statement";
      case TokenType::kData:
        return "template data";
      case TokenType::kString:
        return "string";
      case TokenType::kInteger:
        return "integer";
      case TokenType::kFloat:
        return "float";
      default:
        return t.text;
    }
  }

  bool is_op(const char* op) const {
    return cur().type == TokenType::kOperator && cur().text == op;
  }
  bool is_name(const char* name) const {
    return cur().type == TokenType::kName && cur().text == name;
  }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op))
      fail(cur(), fmt::format("expected token '{}', got '{}'", op, describe(cur())));
  }
  std::string expect_name() {
    if (cur().type != TokenType::kName)
      fail(cur(), fmt::format("expected token 'name', got '{}'", describe(cur())));
    std::string n = cur().text;
    next();
    return n;
  }
  void expect_block_end() {
    if (cur().type != TokenType::kBlockEnd)
      fail(cur(),
           fmt::format("expected token 'end of statement block', got '{}'", describe(cur())));
    next();
  }

  ExprPtr make(ExprKind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->column = at.column;
    return e;
  }
  StmtPtr make_stmt(StmtKind kind, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = at.line;
    s->column = at.column;
    return s;
  }

  // ---- statements ----------------------------------------------------------------------

  // Parses until a block tag whose name is in `end_tokens`; leaves the parser on that name.
  std::vector<StmtPtr> subparse(std::initializer_list<const char*> end_tokens) {
    DepthGuard guard(*this);
    std::vector<StmtPtr> body;
    while (true) {
      const Token& t = cur();
      switch (t.type) {
        case TokenType::kData: {
          auto s = make_stmt(StmtKind::kText, t);
          s->text = t.text;
          body.push_back(std::move(s));
          next();
          break;
        }
        case TokenType::kVariableBegin: {
          next();
          auto s = make_stmt(StmtKind::kOutput, t);
          s->expr = parse_tuple(false, true, {}, false);
          // jinja2 folds a constant {{ }} expression at compile time, where slicing goes through
          // environment.getitem: `{{ false[:2] }}` prints "" although `false[:2]` raises elsewhere.
          if (is_constant(*s->expr)) mark_folded_slices(*s->expr);
          if (cur().type != TokenType::kVariableEnd)
            fail(cur(),
                 fmt::format("expected token 'end of print statement', got '{}'", describe(cur())));
          next();
          body.push_back(std::move(s));
          break;
        }
        case TokenType::kBlockBegin: {
          next();
          if (cur().type == TokenType::kName)
            for (const char* e : end_tokens)
              if (cur().text == e) return body;
          body.push_back(parse_statement());
          expect_block_end();
          break;
        }
        case TokenType::kEof: {
          if (end_tokens.size() == 0) return body;
          std::string looking;
          for (const char* e : end_tokens)
            looking += std::string(looking.empty() ? "" : " or ") + "'" + e + "'";
          fail(t,
               fmt::format(
                   "Unexpected end of template. Jinja was looking for the following tags: {}. The "
                   "innermost block that needs to be closed is '{}'.",
                   looking, open_blocks_.empty() ? "" : open_blocks_.back()));
        }
        default:
          fail(t, fmt::format("unexpected '{}'", describe(t)));
      }
    }
  }

  StmtPtr parse_statement() {
    const Token& t = cur();
    if (t.type != TokenType::kName) fail(t, "tag name expected");
    const std::string& n = t.text;
    if (n == "if") return parse_if();
    if (n == "for") return parse_for();
    if (n == "set") return parse_set();
    if (n == "macro") return parse_macro();
    if (n == "call") return parse_call_block();
    if (n == "filter") return parse_filter_block();
    if (n == "with") return parse_with();
    if (n == "block") return parse_block();
    if (n == "break" || n == "continue") {
      if (loop_depth_ == 0) fail(t, fmt::format("'{}' outside loop", n));
      auto s = make_stmt(n == "break" ? StmtKind::kBreak : StmtKind::kContinue, t);
      next();
      return s;
    }
    if (n == "include" || n == "import" || n == "extends" || n == "from") {
      // The sandbox has no loader: jinja2 fails when the tag runs, so do the same.
      auto s = make_stmt(StmtKind::kUnsupported, t);
      s->name = n;
      while (cur().type != TokenType::kBlockEnd && cur().type != TokenType::kEof) next();
      return s;
    }
    std::string message = fmt::format("Encountered unknown tag '{}'.", n);
    if (!open_blocks_.empty())
      message +=
          fmt::format(" The innermost block that needs to be closed is '{}'.", open_blocks_.back());
    fail(t, message);
  }

  // Parses a body up to one of `ends`, returning which end tag closed it (parser after the tag
  // name).
  std::string body_until(std::vector<StmtPtr>& body, std::initializer_list<const char*> ends) {
    body = subparse(ends);
    std::string end = cur().text;
    next();
    return end;
  }

  StmtPtr parse_if() {
    auto s = make_stmt(StmtKind::kIf, cur());
    next();
    open_blocks_.push_back("if");
    Stmt* node = s.get();
    while (true) {
      node->expr = parse_tuple(false, false, {}, false);
      expect_block_end();
      std::string end = body_until(node->body, {"elif", "else", "endif"});
      if (end == "elif") {
        auto elif = make_stmt(StmtKind::kIf, toks_[pos_ - 1]);
        Stmt* next_node = elif.get();
        node->else_body.push_back(std::move(elif));
        node = next_node;
        continue;
      }
      if (end == "else") {
        expect_block_end();
        body_until(node->else_body, {"endif"});
      }
      break;
    }
    open_blocks_.pop_back();
    return s;
  }

  StmtPtr parse_for() {
    auto s = make_stmt(StmtKind::kFor, cur());
    next();
    s->target = parse_assign_target(true, false, {"in"});
    if (!skip_name("in"))
      fail(cur(), fmt::format("expected token 'in', got '{}'", describe(cur())));
    s->expr = parse_tuple(false, false, {"recursive"}, false);
    if (skip_name("if")) s->cond = parse_expression(true);
    if (is_name("recursive")) fail(cur(), "recursive for loops are not supported");
    expect_block_end();
    open_blocks_.push_back("for");
    ++loop_depth_;
    std::string end = body_until(s->body, {"endfor", "else"});
    --loop_depth_;
    if (end == "else") {
      expect_block_end();
      body_until(s->else_body, {"endfor"});
    }
    open_blocks_.pop_back();
    return s;
  }

  StmtPtr parse_set() {
    const Token& at = cur();
    next();
    ExprPtr target = parse_assign_target(true, true, {});
    if (skip_op("=")) {
      auto s = make_stmt(StmtKind::kSet, at);
      s->target = std::move(target);
      s->expr = parse_tuple(false, true, {}, false);
      return s;
    }
    auto s = make_stmt(StmtKind::kSetBlock, at);
    s->target = std::move(target);
    if (is_op("|")) s->expr = parse_filter(nullptr, false);
    expect_block_end();
    open_blocks_.push_back("set");
    body_until(s->body, {"endset"});
    open_blocks_.pop_back();
    return s;
  }

  void parse_signature(Stmt& s) {
    expect_op("(");
    while (!is_op(")")) {
      if (!s.params.empty()) expect_op(",");
      if (is_op(")")) break;
      const Token& at = cur();
      std::string name = expect_name();
      for (const std::string& p : s.params)
        if (p == name) fail(at, "duplicate argument '" + name + "'");
      s.params.push_back(name);
      if (skip_op("=")) {
        s.defaults.push_back(parse_expression(true));
      } else {
        if (!s.defaults.empty() && s.defaults.back())
          fail(at, "non-default argument follows default argument");
        s.defaults.push_back(nullptr);
      }
    }
    next();
  }

  StmtPtr parse_macro() {
    auto s = make_stmt(StmtKind::kMacro, cur());
    next();
    s->name = expect_name();
    parse_signature(*s);
    expect_block_end();
    open_blocks_.push_back("macro");
    int saved_loops = loop_depth_;
    loop_depth_ = 0;
    body_until(s->body, {"endmacro"});
    loop_depth_ = saved_loops;
    open_blocks_.pop_back();
    scan_special_names(*s);
    return s;
  }

  StmtPtr parse_call_block() {
    auto s = make_stmt(StmtKind::kCallBlock, cur());
    next();
    if (is_op("(")) parse_signature(*s);
    const Token& at = cur();
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::kCall) fail(at, "expected call");
    expect_block_end();
    open_blocks_.push_back("call");
    int saved_loops = loop_depth_;
    loop_depth_ = 0;
    body_until(s->body, {"endcall"});
    loop_depth_ = saved_loops;
    open_blocks_.pop_back();
    s->name = "caller";
    scan_special_names(*s);
    return s;
  }

  StmtPtr parse_filter_block() {
    auto s = make_stmt(StmtKind::kFilterBlock, cur());
    next();
    s->expr = parse_filter(nullptr, true);
    expect_block_end();
    open_blocks_.push_back("filter");
    body_until(s->body, {"endfilter"});
    open_blocks_.pop_back();
    return s;
  }

  StmtPtr parse_with() {
    auto s = make_stmt(StmtKind::kWith, cur());
    next();
    while (cur().type != TokenType::kBlockEnd) {
      if (!s->assignments.empty()) expect_op(",");
      ExprPtr target = parse_assign_target(true, false, {});
      expect_op("=");
      s->assignments.emplace_back(std::move(target), parse_expression(true));
    }
    expect_block_end();
    open_blocks_.push_back("with");
    body_until(s->body, {"endwith"});
    open_blocks_.pop_back();
    return s;
  }

  // {% block name %}: without template inheritance a block just renders in place.
  StmtPtr parse_block() {
    auto s = make_stmt(StmtKind::kWith, cur());
    next();
    std::string name = expect_name();
    while (is_name("scoped") || is_name("required")) next();
    expect_block_end();
    open_blocks_.push_back("block");
    body_until(s->body, {"endblock"});
    if (cur().type == TokenType::kName) {
      if (cur().text != name)
        fail(cur(), fmt::format("'{}' was expected, got '{}'", name, cur().text));
      next();
    }
    open_blocks_.pop_back();
    return s;
  }

  // Whether a macro body reads varargs / kwargs / caller (jinja2 only accepts extra arguments
  // then).
  static void scan_expr(const Expr* e, Stmt& m) {
    if (e == nullptr) return;
    if (e->kind == ExprKind::kName) {
      if (e->name == "varargs") m.uses_varargs = true;
      if (e->name == "kwargs") m.uses_kwargs = true;
      if (e->name == "caller") m.uses_caller = true;
    }
    for (const auto& c : e->children) scan_expr(c.get(), m);
    for (const auto& kv : e->kwargs) scan_expr(kv.second.get(), m);
  }
  static void scan_stmts(const std::vector<StmtPtr>& body, Stmt& m) {
    for (const auto& s : body) {
      scan_expr(s->expr.get(), m);
      scan_expr(s->cond.get(), m);
      for (const auto& d : s->defaults) scan_expr(d.get(), m);
      for (const auto& a : s->assignments) scan_expr(a.second.get(), m);
      scan_stmts(s->body, m);
      scan_stmts(s->else_body, m);
    }
  }
  static void scan_special_names(Stmt& m) {
    scan_stmts(m.body, m);
    for (const auto& d : m.defaults) scan_expr(d.get(), m);
  }

  ExprPtr parse_assign_target(bool with_tuple, bool with_namespace,
                              std::initializer_list<const char*> extra_end) {
    const Token& at = cur();
    ExprPtr target;
    if (with_namespace && cur().type == TokenType::kName && peek().type == TokenType::kOperator &&
        peek().text == ".") {
      auto base = make(ExprKind::kName, at);
      base->name = expect_name();
      next();  // '.'
      target = make(ExprKind::kGetAttr, at);
      target->name = expect_name();
      target->children.push_back(std::move(base));
      return target;
    }
    target = with_tuple ? parse_tuple(true, true, extra_end, false) : parse_primary();
    auto check = [&](const Expr& e) {
      if (e.kind != ExprKind::kName)
        fail(at, "can't assign to '" +
                     std::string(e.kind == ExprKind::kLiteral ? "literal" : "expression") + "'");
    };
    if (target->kind == ExprKind::kTuple) {
      for (const auto& c : target->children) check(*c);
    } else {
      check(*target);
    }
    return target;
  }

  // ---- expressions ---------------------------------------------------------------------

  bool is_tuple_end(std::initializer_list<const char*> extra_end) const {
    TokenType t = cur().type;
    if (t == TokenType::kVariableEnd || t == TokenType::kBlockEnd || t == TokenType::kEof)
      return true;
    if (t == TokenType::kOperator && cur().text == ")") return true;
    if (t == TokenType::kName)
      for (const char* e : extra_end)
        if (cur().text == e) return true;
    return false;
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr,
                      std::initializer_list<const char*> extra_end, bool explicit_parentheses) {
    const Token& at = cur();
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      if (simplified) {
        args.push_back(parse_primary());
      } else {
        args.push_back(parse_expression(with_condexpr));
      }
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parentheses)
        fail(cur(), fmt::format("Expected an expression, got '{}'", describe(cur())));
    }
    auto t = make(ExprKind::kTuple, at);
    t->children = std::move(args);
    return t;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    const Token& at = cur();
    ExprPtr expr1 = parse_or();
    while (skip_name("if")) {
      ExprPtr expr2 = parse_or();
      ExprPtr expr3 = skip_name("else") ? parse_condexpr() : nullptr;
      auto c = make(ExprKind::kCond, at);
      c->children.push_back(std::move(expr1));
      c->children.push_back(std::move(expr2));
      c->children.push_back(std::move(expr3));
      expr1 = std::move(c);
    }
    return expr1;
  }

  ExprPtr binary(ExprKind kind, const Token& at, ExprPtr a, ExprPtr b, std::string op = "") {
    auto e = make(kind, at);
    e->name = std::move(op);
    e->children.push_back(std::move(a));
    e->children.push_back(std::move(b));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      const Token& at = cur();
      next();
      left = binary(ExprKind::kOr, at, std::move(left), parse_and());
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      const Token& at = cur();
      next();
      left = binary(ExprKind::kAnd, at, std::move(left), parse_not());
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto e = make(ExprKind::kNot, cur());
      next();
      e->children.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const Token& at = cur();
    ExprPtr first = parse_math1();
    ExprPtr node;
    while (true) {
      std::string op;
      if (cur().type == TokenType::kOperator &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == "<=" ||
           cur().text == ">" || cur().text == ">=")) {
        op = cur().text;
        next();
      } else if (is_name("in")) {
        op = "in";
        next();
      } else if (is_name("not") && peek().type == TokenType::kName && peek().text == "in") {
        op = "notin";
        next();
        next();
      } else {
        break;
      }
      if (!node) {
        node = make(ExprKind::kCompare, at);
        node->children.push_back(std::move(first));
      }
      node->ops.push_back(op);
      node->children.push_back(parse_math1());
    }
    return node ? std::move(node) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& at = cur();
      std::string op = at.text;
      next();
      left = binary(ExprKind::kBinary, at, std::move(left), parse_concat(), op);
    }
    return left;
  }

  ExprPtr parse_concat() {
    const Token& at = cur();
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto e = make(ExprKind::kConcat, at);
    e->children.push_back(std::move(first));
    while (skip_op("~")) e->children.push_back(parse_math2());
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& at = cur();
      std::string op = at.text;
      next();
      left = binary(ExprKind::kBinary, at, std::move(left), parse_pow(), op);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      const Token& at = cur();
      next();
      left = binary(ExprKind::kBinary, at, std::move(left), parse_unary(true), "**");
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    const Token& at = cur();
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      node = make(is_op("-") ? ExprKind::kNeg : ExprKind::kPos, at);
      next();
      node->children.push_back(parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr literal(const Token& at, Value v) {
    auto e = make(ExprKind::kLiteral, at);
    e->literal = std::move(v);
    return e;
  }

  ExprPtr parse_primary() {
    DepthGuard guard(*this);
    const Token& t = cur();
    switch (t.type) {
      case TokenType::kName: {
        next();
        if (t.text == "true" || t.text == "True") return literal(t, Value::boolean(true));
        if (t.text == "false" || t.text == "False") return literal(t, Value::boolean(false));
        if (t.text == "none" || t.text == "None") return literal(t, Value::none());
        auto e = make(ExprKind::kName, t);
        e->name = t.text;
        return e;
      }
      case TokenType::kString: {
        std::string s = t.text;
        next();
        while (cur().type == TokenType::kString) {
          s += cur().text;
          next();
        }
        return literal(t, Value::string(std::move(s)));
      }
      case TokenType::kInteger:
        next();
        return literal(t, Value::integer(t.int_value));
      case TokenType::kFloat:
        next();
        return literal(t, Value::number(t.float_value));
      case TokenType::kOperator:
        if (t.text == "(") {
          next();
          ExprPtr e = parse_tuple(false, true, {}, true);
          expect_op(")");
          return e;
        }
        if (t.text == "[") {
          next();
          auto e = make(ExprKind::kList, t);
          while (!is_op("]")) {
            if (!e->children.empty()) expect_op(",");
            if (is_op("]")) break;
            e->children.push_back(parse_expression(true));
          }
          next();
          return e;
        }
        if (t.text == "{") {
          next();
          auto e = make(ExprKind::kDict, t);
          while (!is_op("}")) {
            if (!e->children.empty()) expect_op(",");
            if (is_op("}")) break;
            e->children.push_back(parse_expression(true));
            expect_op(":");
            e->children.push_back(parse_expression(true));
          }
          next();
          return e;
        }
        break;
      default:
        break;
    }
    fail(t, fmt::format("unexpected '{}'", describe(t)));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".")) {
        const Token& at = cur();
        next();
        if (cur().type == TokenType::kName) {
          auto e = make(ExprKind::kGetAttr, at);
          e->name = cur().text;
          next();
          e->children.push_back(std::move(node));
          node = std::move(e);
        } else if (cur().type == TokenType::kInteger) {
          auto e = make(ExprKind::kGetItem, at);
          e->children.push_back(std::move(node));
          e->children.push_back(literal(cur(), Value::integer(cur().int_value)));
          next();
          node = std::move(e);
        } else {
          fail(cur(), "expected name or number");
        }
      } else if (is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& at = cur();
    next();                      // '['
    std::vector<ExprPtr> parts;  // start, stop, step when slicing
    bool slice = false;
    if (!is_op(":")) {
      parts.push_back(parse_expression(true));
      if (is_op(",")) fail(cur(), "tuple subscripts are not supported");
    } else {
      parts.push_back(nullptr);
    }
    if (skip_op(":")) {
      slice = true;
      parts.push_back(is_op("]") || is_op(":") ? nullptr : parse_expression(true));
      if (skip_op(":")) {
        parts.push_back(is_op("]") ? nullptr : parse_expression(true));
      } else {
        parts.push_back(nullptr);
      }
    }
    expect_op("]");
    auto e = make(slice ? ExprKind::kSlice : ExprKind::kGetItem, at);

    e->children.push_back(std::move(node));
    for (auto& p : parts) e->children.push_back(std::move(p));
    return e;
  }

  void parse_call_args(Expr& call) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) {
        expect_op(",");
        if (is_op(")")) break;
      }
      first = false;
      if (is_op("*") || is_op("**")) fail(cur(), "*args and **kwargs in calls are not supported");
      if (cur().type == TokenType::kName && peek().type == TokenType::kOperator &&
          peek().text == "=") {
        std::string key = cur().text;
        next();
        next();
        call.kwargs.emplace_back(key, parse_expression(true));
      } else {
        if (!call.kwargs.empty()) fail(cur(), "invalid syntax for function call expression");
        call.children.push_back(parse_expression(true));
      }
    }
    next();
  }

  static void mark_folded_slices(Expr& e) {
    if (e.kind == ExprKind::kSlice) e.constant = true;
    for (auto& c : e.children)
      if (c) mark_folded_slices(*c);
    for (auto& kv : e.kwargs) mark_folded_slices(*kv.second);
  }

  // Whether jinja2's optimizer can fold the expression at compile time (literals and
  // operators over them).
  static bool is_constant(const Expr& e) {
    switch (e.kind) {
      case ExprKind::kLiteral:
        return true;
      case ExprKind::kList:
      case ExprKind::kTuple:
      case ExprKind::kDict:
      case ExprKind::kNeg:
      case ExprKind::kPos:
      case ExprKind::kNot:
      case ExprKind::kAnd:
      case ExprKind::kOr:
      case ExprKind::kBinary:
      case ExprKind::kConcat:
      case ExprKind::kCompare:
      case ExprKind::kGetItem:
      case ExprKind::kGetAttr:
      case ExprKind::kSlice:
      case ExprKind::kCond:
      case ExprKind::kTest:
      case ExprKind::kFilter:
        // Filters that take the context cannot be folded.
        if (e.kind == ExprKind::kFilter &&
            (e.name == "map" || e.name == "select" || e.name == "reject" ||
             e.name == "selectattr" || e.name == "rejectattr"))
          return false;
        for (const auto& kv : e.kwargs)
          if (!is_constant(*kv.second)) return false;
        for (const auto& c : e.children)
          if (c && !is_constant(*c)) return false;
        return true;
      default:
        return false;
    }
  }

  ExprPtr parse_call(ExprPtr node) {
    auto e = make(ExprKind::kCall, cur());
    e->line = node->line;  // errors of a call point at the callee: `raise_exception(...)`
    e->column = node->column;
    e->children.push_back(std::move(node));
    parse_call_args(*e);
    return e;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        node = parse_filter(std::move(node), false);
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  std::string dotted_name() {
    std::string name = expect_name();
    while (skip_op(".")) name += "." + expect_name();
    return name;
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline) next();
      start_inline = false;
      auto e = make(ExprKind::kFilter, cur());
      e->name = dotted_name();
      e->children.push_back(std::move(node));
      if (is_op("(")) parse_call_args(*e);
      node = std::move(e);
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    next();  // 'is'
    auto e = make(ExprKind::kTest, cur());
    e->negated = skip_name("not");
    e->name = dotted_name();
    e->children.push_back(std::move(node));
    TokenType t = cur().type;
    if (is_op("(")) {
      parse_call_args(*e);
    } else if ((t == TokenType::kName || t == TokenType::kString || t == TokenType::kInteger ||
                t == TokenType::kFloat || is_op("(") || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail(cur(), "You cannot chain multiple tests with is");
      e->children.push_back(parse_postfix(parse_primary()));
    }
    return e;
  }
};

}  // namespace

std::shared_ptr<Program> parse_program(std::string_view source, const TemplateOptions& options) {
  auto program = std::make_shared<Program>();
  program->body = Parser(lex(source, options), options).parse_all();
  return program;
}

}  // namespace loupe::chat
