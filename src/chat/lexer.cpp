#include "chat/lexer.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "chat/pystr.h"
#include "chat/value.h"

namespace loupe::chat {
namespace {

class Lexer {
 public:
  Lexer(std::string source, const TemplateOptions& options)
      : src_(std::move(source)), opt_(options) {
    line_starts_.push_back(0);
    for (size_t k = 0; k < src_.size(); ++k)
      if (src_[k] == '\n') line_starts_.push_back(k + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;
    while (pos < src_.size()) {
      size_t tag = find_tag(pos);
      if (tag == std::string::npos) {
        emit_data(pos, src_.size(), pos);
        break;
      }
      char kind = src_[tag + 1];  // '{', '%' or '#'
      size_t p = tag + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      size_t raw_end = kind == '%' ? match_raw_begin(p) : 0;
      std::string text = src_.substr(pos, tag - pos);
      strip_before_tag(text, sign, kind != '{', line_starting);
      if (!text.empty()) push_data(std::move(text), pos);

      if (kind == '#') {
        size_t e = src_.find("#}", p);
        if (e == std::string::npos) fail(tag, "Missing end of comment tag");
        char end_sign = e > p && (src_[e - 1] == '-' || src_[e - 1] == '+') ? src_[e - 1] : 0;
        pos = after_block_end(e + 2, end_sign);
      } else if (raw_end != 0) {
        pos = lex_raw(raw_end, tag);
      } else {
        pos = lex_tag(kind, tag, p);
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    tokens_.push_back(
        Token{TokenType::kEof, "", 0, 0, line_of(src_.size()), column_of(src_.size())});
    return std::move(tokens_);
  }

 private:
  std::string src_;
  const TemplateOptions& opt_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;

  int line_of(size_t pos) const {
    return static_cast<int>(std::upper_bound(line_starts_.begin(), line_starts_.end(), pos) -
                            line_starts_.begin());
  }
  int column_of(size_t pos) const {
    size_t ls = line_starts_[line_of(pos) - 1];
    return static_cast<int>(py::length(std::string_view(src_).substr(ls, pos - ls))) + 1;
  }

  [[noreturn]] void fail(size_t pos, std::string message) const {
    throw TemplateException{TemplateErrorKind::kSyntax, std::move(message), line_of(pos),
                            column_of(pos)};
  }

  size_t find_tag(size_t pos) const {
    for (size_t k = src_.find('{', pos); k != std::string::npos; k = src_.find('{', k + 1)) {
      if (k + 1 < src_.size() && (src_[k + 1] == '{' || src_[k + 1] == '%' || src_[k + 1] == '#'))
        return k;
    }
    return std::string::npos;
  }

  void push_data(std::string text, size_t pos) {
    tokens_.push_back(Token{TokenType::kData, std::move(text), 0, 0, line_of(pos), column_of(pos)});
  }
  void emit_data(size_t b, size_t e, size_t pos) {
    if (e > b) push_data(src_.substr(b, e - b), pos);
  }

  static bool is_space_at(const std::string& s, size_t k) {
    return k < s.size() && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r' ||
                            s[k] == '\f' || s[k] == '\v');
  }

  // The whitespace rules that apply to the text before a tag ({%-, lstrip_blocks).
  void strip_before_tag(std::string& text, char sign, bool block_like, bool line_starting) const {
    if (sign == '-') {
      text = py::strip(text, std::nullopt, false, true);
    } else if (sign != '+' && opt_.lstrip_blocks && block_like) {
      size_t l_pos = text.rfind('\n');
      l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
      if ((l_pos > 0 || line_starting) && l_pos < text.size()) {
        std::u32string rest = py::decode(std::string_view(text).substr(l_pos));
        if (std::all_of(rest.begin(), rest.end(), [](char32_t c) { return py::isspace(c); }))
          text.resize(l_pos);
      }
    }
  }

  // After `%}` or `#}` (at pos, `sign` the char before it): `-` eats whitespace, trim_blocks
  // eats one newline unless `+`.
  size_t after_block_end(size_t pos, char sign) const {
    if (sign == '-') {
      while (is_space_at(src_, pos)) ++pos;
    } else if (sign != '+' && opt_.trim_blocks && pos < src_.size() && src_[pos] == '\n') {
      ++pos;
    }
    return pos;
  }

  // `{% raw %}` at the tag: returns the position after it, or 0.
  size_t match_raw_begin(size_t p) const {
    while (is_space_at(src_, p)) ++p;
    if (src_.compare(p, 3, "raw") != 0) return 0;
    p += 3;
    while (is_space_at(src_, p)) ++p;
    if (src_.compare(p, 3, "-%}") == 0) {
      p += 3;
      while (is_space_at(src_, p)) ++p;
      return p;
    }
    if (src_.compare(p, 2, "%}") == 0) return p + 2;
    return 0;
  }

  size_t lex_raw(size_t content_begin, size_t tag) {
    bool line_starting = src_[content_begin - 1] == '\n';
    for (size_t k = src_.find("{%", content_begin); k != std::string::npos;
         k = src_.find("{%", k + 1)) {
      size_t p = k + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      while (is_space_at(src_, p)) ++p;
      if (src_.compare(p, 6, "endraw") != 0) continue;
      p += 6;
      while (is_space_at(src_, p)) ++p;
      char end_sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) end_sign = src_[p++];
      if (src_.compare(p, 2, "%}") != 0) continue;
      std::string text = src_.substr(content_begin, k - content_begin);
      strip_before_tag(text, sign, true, line_starting);
      if (!text.empty()) push_data(std::move(text), content_begin);
      return after_block_end(p + 2, end_sign);
    }
    fail(tag, "Missing end of raw directive");
  }

  size_t lex_tag(char kind, size_t tag, size_t p) {
    bool block = kind == '%';
    tokens_.push_back(Token{block ? TokenType::kBlockBegin : TokenType::kVariableBegin, "", 0, 0,
                            line_of(tag), column_of(tag)});
    std::string balance;  // expected closing brackets
    while (true) {
      while (is_space_at(src_, p)) ++p;
      if (p >= src_.size())
        fail(p, block ? "unexpected end of template, expected 'end of statement block'"
                      : "unexpected end of template, expected 'end of print statement'");
      if (balance.empty()) {
        if (block) {
          if (src_.compare(p, 3, "-%}") == 0 || src_.compare(p, 3, "+%}") == 0) {
            end_token(TokenType::kBlockEnd, p);
            return after_block_end(p + 3, src_[p]);
          }
          if (src_.compare(p, 2, "%}") == 0) {
            end_token(TokenType::kBlockEnd, p);
            return after_block_end(p + 2, 0);
          }
        } else {
          if (src_.compare(p, 3, "-}}") == 0) {
            end_token(TokenType::kVariableEnd, p);
            p += 3;
            while (is_space_at(src_, p)) ++p;
            return p;
          }
          if (src_.compare(p, 2, "}}") == 0) {
            end_token(TokenType::kVariableEnd, p);
            return p + 2;
          }
        }
      }
      p = lex_expression_token(p, balance);
    }
  }

  void end_token(TokenType type, size_t p) {
    tokens_.push_back(Token{type, "", 0, 0, line_of(p), column_of(p)});
  }

  static bool is_digit(char c) { return c >= '0' && c <= '9'; }
  static bool is_name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  }

  // Digits with single underscores between them ("1_000"), from p; returns the end.
  size_t scan_digits(size_t p) const {
    size_t q = p;
    while (q < src_.size() && (is_digit(src_[q]) || (src_[q] == '_' && q > p &&
                                                     q + 1 < src_.size() && is_digit(src_[q + 1]))))
      ++q;
    return q;
  }

  size_t lex_expression_token(size_t p, std::string& balance) {
    Token t{TokenType::kOperator, "", 0, 0, line_of(p), column_of(p)};
    char c = src_[p];
    if (is_digit(c)) {
      size_t q = scan_digits(p);
      bool is_float = false;
      if (q + 1 < src_.size() && src_[q] == '.' && is_digit(src_[q + 1]) &&
          !(p > 0 && src_[p - 1] == '.')) {
        q = scan_digits(q + 1);
        is_float = true;
      }
      if (q < src_.size() && (src_[q] == 'e' || src_[q] == 'E')) {
        size_t r = q + 1;
        if (r < src_.size() && (src_[r] == '+' || src_[r] == '-')) ++r;
        if (r < src_.size() && is_digit(src_[r])) {
          q = scan_digits(r);
          is_float = true;
        }
      }
      std::string digits;
      for (size_t k = p; k < q; ++k)
        if (src_[k] != '_') digits += src_[k];
      if (is_float) {
        t.type = TokenType::kFloat;
        t.float_value = std::strtod(digits.c_str(), nullptr);
      } else {
        t.type = TokenType::kInteger;
        errno = 0;
        t.int_value = std::strtoll(digits.c_str(), nullptr, 10);
        if (errno == ERANGE) fail(p, "integer literal too large for this engine (64-bit)");
      }
      t.text = src_.substr(p, q - p);
      tokens_.push_back(std::move(t));
      return q;
    }
    if (is_name_start(c)) {
      size_t q = p;
      while (q < src_.size() && (is_name_start(src_[q]) || is_digit(src_[q]))) ++q;
      t.type = TokenType::kName;
      t.text = src_.substr(p, q - p);
      tokens_.push_back(std::move(t));
      return q;
    }
    if (c == '\'' || c == '"') {
      size_t q = p + 1;
      while (q < src_.size() && src_[q] != c) q += src_[q] == '\\' ? 2 : 1;
      if (q >= src_.size()) fail(p, std::string("unexpected char '") + c + "'");
      t.type = TokenType::kString;
      t.text = unescape(src_.substr(p + 1, q - p - 1));
      tokens_.push_back(std::move(t));
      return q + 1;
    }
    static const char* kOps2[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : kOps2) {
      if (src_.compare(p, 2, op) == 0) {
        t.text = op;
        tokens_.push_back(std::move(t));
        return p + 2;
      }
    }
    if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) != std::string_view::npos) {
      if (c == '(' || c == '[' || c == '{') {
        if (balance.size() >= static_cast<size_t>(opt_.max_nesting))
          fail(p, "brackets nested too deeply");
        balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
      } else if (c == ')' || c == ']' || c == '}') {
        if (balance.empty()) fail(p, std::string("unexpected '") + c + "'");
        if (balance.back() != c)
          fail(p, std::string("unexpected '") + c + "', expected '" + balance.back() + "'");
        balance.pop_back();
      }
      t.text = std::string(1, c);
      tokens_.push_back(std::move(t));
      return p + 1;
    }
    fail(p, "unexpected char " + py::repr(std::string(1, c)) + " at " + std::to_string(p));
  }

  // Python's "unicode-escape" decoding of a string literal's body (jinja2 uses it).
  static std::string unescape(const std::string& s) {
    std::string out;
    for (size_t k = 0; k < s.size(); ++k) {
      if (s[k] != '\\' || k + 1 >= s.size()) {
        out.push_back(s[k]);
        continue;
      }
      char e = s[++k];
      auto hex = [&](int n) -> bool {
        uint32_t v = 0;
        for (int d = 1; d <= n; ++d) {
          if (k + d >= s.size()) return false;
          char h = s[k + d];
          int x = (h >= '0' && h <= '9')   ? h - '0'
                  : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                  : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                           : -1;
          if (x < 0) return false;
          v = v * 16 + static_cast<uint32_t>(x);
        }
        if (v > 0x10FFFF) return false;
        py::append_utf8(out, v);
        k += n;
        return true;
      };
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'v':
          out += '\v';
          break;
        case '\n':
          break;  // line continuation
        case 'x':
          if (!hex(2)) out += "\\x";
          break;
        case 'u':
          if (!hex(4)) out += "\\u";
          break;
        case 'U':
          if (!hex(8)) out += "\\U";
          break;
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = static_cast<uint32_t>(e - '0');
            for (int d = 0; d < 2 && k + 1 < s.size() && s[k + 1] >= '0' && s[k + 1] <= '7'; ++d)
              v = v * 8 + static_cast<uint32_t>(s[++k] - '0');
            py::append_utf8(out, v);
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    return out;
  }
};

}  // namespace

std::vector<Token> lex(std::string_view source, const TemplateOptions& options) {
  // jinja2 normalizes \r\n and \r to \n and, unless keep_trailing_newline, drops one final newline.
  std::string s;
  s.reserve(source.size());
  for (size_t k = 0; k < source.size(); ++k) {
    if (source[k] == '\r') {
      s += '\n';
      if (k + 1 < source.size() && source[k + 1] == '\n') ++k;
    } else {
      s += source[k];
    }
  }
  if (!options.keep_trailing_newline && !s.empty() && s.back() == '\n') s.pop_back();
  return Lexer(std::move(s), options).run();
}

}  // namespace loupe::chat
