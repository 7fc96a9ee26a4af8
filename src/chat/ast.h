// The parsed template: expression and statement trees, immutable after parsing.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/value.h"

namespace loupe::chat {

enum class ExprKind {
  kLiteral,  // literal
  kName,     // name
  kList,     // children
  kTuple,    // children
  kDict,     // children: key0, value0, key1, value1, ...
  kGetAttr,  // children[0].name
  kGetItem,  // children[0][children[1]]
  kSlice,    // children[0][c1:c2:c3], absent parts are null
  kCall,     // children[0](children[1..], kwargs)
  kFilter,   // children[0] | name(children[1..], kwargs); children[0] null in filter blocks
  kTest,     // children[0] is [not] name(children[1..], kwargs)
  kNeg,
  kPos,
  kNot,
  kAnd,
  kOr,
  kBinary,   // name: + - * / // % **
  kConcat,   // children joined with ~
  kCompare,  // children[0] ops[0] children[1] ops[1] children[2] ...
  kCond,     // children: then, condition, else (else may be null)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  int line = 0;
  int column = 0;
  std::string name;
  Value literal;
  bool negated = false;   // kTest: `is not`
  bool constant = false;  // kSlice in a constant {{ }}: jinja2 folds it through environment.getitem
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
};

enum class StmtKind {
  kText,         // text
  kOutput,       // {{ expr }}
  kIf,           // expr, body, else_body (elif chains nest in else_body)
  kFor,          // target in expr [if cond], body, else_body
  kSet,          // target = expr
  kSetBlock,     // {% set target [| filters] %}body{% endset %}; expr: the filter chain or null
  kMacro,        // name(params=defaults) body
  kCallBlock,    // {% call(params) expr %}body{% endcall %}
  kFilterBlock,  // {% filter expr %}body{% endfilter %}
  kWith,         // assignments, body
  kBreak,
  kContinue,
  kUnsupported,  // include/import/extends/from: refused when executed
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;

struct Stmt {
  StmtKind kind = StmtKind::kText;
  int line = 0;
  int column = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr target;
  ExprPtr cond;
  std::vector<StmtPtr> body;
  std::vector<StmtPtr> else_body;
  // Macros and call blocks.
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // one per param, null when the param has none
  bool uses_varargs = false;
  bool uses_kwargs = false;
  bool uses_caller = false;
  // with.
  std::vector<std::pair<ExprPtr, ExprPtr>> assignments;
};

}  // namespace loupe::chat
