#include "token_view.h"

#include <fmt/format.h>

namespace loupe::cli {

// Length of the well-formed UTF-8 character at s[i], 0 if ill-formed.
static size_t utf8_char(std::string_view s, size_t i) {
  auto b = static_cast<unsigned char>(s[i]);
  size_t len = b < 0x80                 ? 1
               : b >= 0xC2 && b <= 0xDF ? 2
               : b >= 0xE0 && b <= 0xEF ? 3
               : b >= 0xF0 && b <= 0xF4 ? 4
                                        : 0;
  if (len == 0 || i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  return len;
}

std::string readable(std::string_view s, bool visible_space) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    size_t len = utf8_char(s, i);
    char c = s[i];
    if (len == 0) {
      out += fmt::format("\\x{:02X}", static_cast<unsigned char>(c));
      i += 1;
      continue;
    }
    if (len == 1) {
      if (visible_space && c == ' ')
        out += "\xC2\xB7";
      else if (visible_space && c == '\t')
        out += "\xE2\x86\x92";
      else if (visible_space && c == '\n')
        out += "\xE2\x86\xB5";
      else if (c == '\n')
        out += "\\n";
      else if (c == '\t')
        out += "\\t";
      else if (c == '\r')
        out += "\\r";
      else if (c == '\\')
        out += "\\\\";
      else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F)
        out += fmt::format("\\x{:02X}", static_cast<unsigned char>(c));
      else
        out += c;
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  return out;
}

static const char* type_label(tokenizer::TokenType t) {
  switch (t) {
    case tokenizer::TokenType::kNormal:
      return "";
    case tokenizer::TokenType::kUnknown:
      return "unknown";
    case tokenizer::TokenType::kControl:
      return "control";
    case tokenizer::TokenType::kUserDefined:
      return "user-defined";
    case tokenizer::TokenType::kUnused:
      return "unused";
    case tokenizer::TokenType::kByte:
      return "byte";
    default:
      return "undefined";
  }
}

std::string token_lines(const tokenizer::Tokenizer& tok, std::span<const int32_t> ids,
                        bool show_special) {
  std::string out;
  for (int32_t id : ids) {
    out += fmt::format("{:>7}  {}", id, readable(tok.token_to_piece(id, true), show_special));
    if (show_special) {
      const char* label = type_label(tok.token_type(id));
      if (*label != '\0') out += fmt::format("   [{}]", label);
    }
    out += "\n";
  }
  return out;
}

}  // namespace loupe::cli
