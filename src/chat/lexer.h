// Jinja2's lexer: template text into data and tag tokens, with jinja2's whitespace rules
// (`{%-`/`-%}`, `{%+`/`+%}`, trim_blocks, lstrip_blocks, raw blocks, comments, newline
// normalization and the dropped trailing newline).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chat/template.h"

namespace loupe::chat {

enum class TokenType {
  kData,
  kVariableBegin,
  kVariableEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInteger,
  kFloat,
  kOperator,
  kEof
};

struct Token {
  TokenType type;
  std::string text;  // data, name, decoded string literal, or operator
  int64_t int_value = 0;
  double float_value = 0;
  int line = 0;
  int column = 0;
};

// Throws TemplateException (kSyntax) on malformed input.
std::vector<Token> lex(std::string_view source, const TemplateOptions& options);

}  // namespace loupe::chat
