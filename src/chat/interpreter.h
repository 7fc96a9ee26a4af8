// The tree-walking renderer: scopes, statements, expressions, attribute and item lookup with
// jinja2's sandbox rules, macros, and the resource limits of RenderOptions.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "chat/parser.h"
#include "chat/value.h"

namespace loupe::chat {

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
  const Value* lookup(const std::string& name) const {
    for (const Scope* s = this; s != nullptr; s = s->parent.get()) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
  }
};

class Interpreter {
 public:
  Interpreter(std::shared_ptr<const Program> program, const RenderOptions& options);

  // Renders the program with `context` (a dict) as the template's variables.
  std::string render(const Value& context);

  // For builtins.
  const RenderOptions& options() const { return options_; }
  Value call(const Value& callee, CallArgs& args);
  Value get_attr(const Value& obj, const std::string& name);  // obj.name
  Value get_item(const Value& obj, const Value& key);         // obj[key]
  Value apply_filter(const std::string& name, const Value& value, CallArgs& args);
  bool apply_test(const std::string& name, const Value& value, CallArgs& args);
  // Charges `n` units of work (loop iterations, elements a filter processes).
  void charge(int64_t n);
  // Refuses to build a string or list larger than the output limit.
  void check_size(size_t bytes_or_items) const;

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  std::shared_ptr<const Program> program_;
  const RenderOptions& options_;
  std::string* out_ = nullptr;
  int64_t steps_ = 0;
  int call_depth_ = 0;
  int eval_depth_ = 0;
  std::unordered_map<std::string, Value> globals_;
  std::shared_ptr<Scope> root_;  // the template's top-level scope

  Flow exec_block(const std::vector<StmtPtr>& body, const std::shared_ptr<Scope>& scope);
  Flow exec(const Stmt& s, const std::shared_ptr<Scope>& scope);
  Flow exec_for(const Stmt& s, const std::shared_ptr<Scope>& scope);
  void exec_with(const Stmt& s, const std::shared_ptr<Scope>& scope);
  std::string capture(const std::vector<StmtPtr>& body, const std::shared_ptr<Scope>& scope);
  void write(const std::string& text);
  void assign(const Expr& target, const Value& value, Scope& scope,
              const std::shared_ptr<Scope>& lookup_scope);
  Value make_macro(const Stmt& s, const std::shared_ptr<Scope>& scope);
  Value call_macro(const Stmt& m, const std::shared_ptr<Scope>& def_scope, CallArgs& args,
                   const Value* caller);

  Value eval(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_inner(const Expr& e, const std::shared_ptr<Scope>& scope);
  CallArgs eval_args(const Expr& e, size_t first, const std::shared_ptr<Scope>& scope);
  Value lookup(const std::string& name, const Scope& scope) const;
  Value binary(const std::string& op, const Value& a, const Value& b);
  Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step,
              bool constant);
};

}  // namespace loupe::chat
