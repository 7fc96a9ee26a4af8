// Jinja2's grammar (jinja2/parser.py) over the lexer's tokens, producing the statement tree.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "chat/ast.h"

namespace loupe::chat {

struct Program {
  std::vector<StmtPtr> body;
};

// Throws TemplateException (kSyntax) with the offending line and column.
std::shared_ptr<Program> parse_program(std::string_view source, const TemplateOptions& options);

}  // namespace loupe::chat
