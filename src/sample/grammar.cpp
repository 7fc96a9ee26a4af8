#include "sample/grammar.h"

#include <algorithm>
#include <functional>
#include <map>
#include <unordered_map>

namespace loupe::sample {
namespace {

using T = GrammarElemType;

// Parser limits: a grammar is untrusted input and repetitions expand by copying.
constexpr uint64_t kMaxRepetition = 10000;
constexpr size_t kMaxElements = size_t{1} << 22;
constexpr int kMaxNesting = 256;

bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

uint32_t utf8_len(uint32_t cp) {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

uint32_t sat_add(uint32_t a, uint32_t b) {
  return (a == Grammar::kUnreachable || b == Grammar::kUnreachable || a + b < a)
             ? Grammar::kUnreachable
             : a + b;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Status run() {
    skip_space(true);
    while (!eof()) {
      const size_t name_pos = pos_;
      std::string name = parse_name();
      if (name.empty()) return error(pos_, "expected a rule name");
      skip_space(false);
      if (text_.substr(pos_, 3) != "::=") {
        return error(pos_, fmt::format("expected '::=' after rule name '{}'", name));
      }
      pos_ += 3;
      skip_space(true);
      const uint32_t id = symbol(name, name_pos);
      if (defined_[id]) {
        return error(name_pos, fmt::format("rule '{}' is defined twice (first at {})", name,
                                           where(def_pos_[id])));
      }
      defined_[id] = true;
      def_pos_[id] = name_pos;
      LOUPE_TRY(parse_alternates(name, id, false, 0));
      if (!eof()) {
        if (text_[pos_] == '\r') {
          pos_ += (pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') ? 2 : 1;
        } else if (text_[pos_] == '\n') {
          ++pos_;
        } else {
          return error(pos_, fmt::format("unexpected '{}' in rule '{}': expected an item, '|' or "
                                         "the end of the line",
                                         printable(text_[pos_]), name));
        }
      }
      skip_space(true);
    }
    for (uint32_t id = 0; id < names_.size(); ++id) {
      if (!defined_[id]) {
        return error(first_ref_[id], fmt::format("undefined rule '{}'", names_[id]));
      }
    }
    return Status();
  }

  std::vector<std::vector<GrammarElem>> rules_;
  std::vector<std::string> names_;
  std::vector<size_t> def_pos_;

  std::string where(size_t pos) const {
    int line = 1, col = 1;
    for (size_t i = 0; i < pos && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return fmt::format("{}:{}", line, col);
  }

  Status error(size_t pos, const std::string& message) const {
    return Status(ErrorCode::kInvalidArgument, fmt::format("grammar:{}: {}", where(pos), message));
  }

 private:
  static std::string printable(char c) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return fmt::format("\\x{:02X}", static_cast<unsigned char>(c));
    }
    return std::string(1, c);
  }

  bool eof() const { return pos_ >= text_.size(); }
  char cur() const { return eof() ? '\0' : text_[pos_]; }

  void skip_space(bool newline_ok) {
    while (!eof()) {
      const char c = text_[pos_];
      if (c == '#') {
        while (!eof() && text_[pos_] != '\n' && text_[pos_] != '\r') ++pos_;
      } else if (c == ' ' || c == '\t') {
        ++pos_;
      } else if (newline_ok && (c == '\n' || c == '\r')) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  std::string parse_name() {
    const size_t start = pos_;
    while (!eof() && is_word_char(text_[pos_])) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  uint32_t symbol(const std::string& name, size_t ref_pos) {
    auto [it, inserted] = ids_.emplace(name, static_cast<uint32_t>(names_.size()));
    if (inserted) {
      names_.push_back(name);
      rules_.emplace_back();
      defined_.push_back(false);
      def_pos_.push_back(0);
      first_ref_.push_back(ref_pos);
    }
    return it->second;
  }

  uint32_t generated_symbol(const std::string& base) {
    std::string name;
    do {
      name = fmt::format("{}-{}", base, ++n_generated_);
    } while (ids_.count(name));
    const uint32_t id = symbol(name, pos_);
    defined_[id] = true;
    def_pos_[id] = pos_;
    return id;
  }

  // One code point of a literal or class, with escapes.
  Status parse_char(uint32_t& cp) {
    if (eof()) return error(pos_, "unexpected end of grammar");
    const unsigned char c = static_cast<unsigned char>(text_[pos_]);
    if (c == '\\') {
      if (pos_ + 1 >= text_.size()) return error(pos_, "unexpected end of grammar after '\\'");
      const char e = text_[pos_ + 1];
      int n_hex = 0;
      switch (e) {
        case 'x':
          n_hex = 2;
          break;
        case 'u':
          n_hex = 4;
          break;
        case 'U':
          n_hex = 8;
          break;
        case 't':
          cp = '\t';
          pos_ += 2;
          return Status();
        case 'r':
          cp = '\r';
          pos_ += 2;
          return Status();
        case 'n':
          cp = '\n';
          pos_ += 2;
          return Status();
        case '\\':
        case '"':
        case '[':
        case ']':
        case '-':
        case '^':
          cp = static_cast<uint32_t>(e);
          pos_ += 2;
          return Status();
        default:
          return error(pos_, fmt::format("unknown escape '\\{}' (known: \\x \\u \\U \\t \\n \\r "
                                         "\\\\ \\\" \\[ \\] \\- \\^)",
                                         printable(e)));
      }
      uint32_t v = 0;
      for (int i = 0; i < n_hex; ++i) {
        const size_t p = pos_ + 2 + static_cast<size_t>(i);
        const int h = p < text_.size() ? hex_value(text_[p]) : -1;
        if (h < 0) return error(pos_, fmt::format("expected {} hex digits after '\\{}'", n_hex, e));
        v = (v << 4) | static_cast<uint32_t>(h);
      }
      if (v > 0x10FFFF) return error(pos_, fmt::format("code point U+{:X} is out of range", v));
      pos_ += 2 + static_cast<size_t>(n_hex);
      cp = v;
      return Status();
    }
    // Raw UTF-8.
    const int n = c < 0x80             ? 0
                  : (c & 0xE0) == 0xC0 ? 1
                  : (c & 0xF0) == 0xE0 ? 2
                  : (c & 0xF8) == 0xF0 ? 3
                                       : -1;
    if (n < 0) return error(pos_, "invalid UTF-8");
    uint32_t v = n == 0 ? c : n == 1 ? (c & 0x1F) : n == 2 ? (c & 0x0F) : (c & 0x07);
    for (int i = 1; i <= n; ++i) {
      const size_t p = pos_ + static_cast<size_t>(i);
      if (p >= text_.size() || (static_cast<unsigned char>(text_[p]) & 0xC0) != 0x80) {
        return error(pos_, "invalid UTF-8");
      }
      v = (v << 6) | (static_cast<unsigned char>(text_[p]) & 0x3F);
    }
    pos_ += 1 + static_cast<size_t>(n);
    cp = v;
    return Status();
  }

  Status parse_int(uint64_t& v) {
    const size_t start = pos_;
    v = 0;
    while (!eof() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      v = v * 10 + static_cast<uint64_t>(text_[pos_] - '0');
      if (v > kMaxRepetition) {
        return error(start,
                     fmt::format("repetition count exceeds the limit of {}", kMaxRepetition));
      }
      ++pos_;
    }
    if (pos_ == start) return error(pos_, "expected a number");
    return Status();
  }

  Status parse_alternates(const std::string& rule_name, uint32_t id, bool nested, int depth) {
    if (depth > kMaxNesting) return error(pos_, "groups are nested too deeply");
    std::vector<GrammarElem> rule;
    LOUPE_TRY(parse_sequence(rule_name, rule, nested, depth));
    while (cur() == '|') {
      rule.push_back({T::kAlt, 0});
      ++pos_;
      skip_space(true);
      LOUPE_TRY(parse_sequence(rule_name, rule, nested, depth));
    }
    rule.push_back({T::kEnd, 0});
    rules_[id] = std::move(rule);
    return Status();
  }

  Status count(size_t n) {
    n_elements_ += n;
    if (n_elements_ > kMaxElements) {
      return error(pos_, fmt::format("grammar expands to more than {} elements", kMaxElements));
    }
    return Status();
  }

  // S{min,max} (max = UINT64_MAX: unbounded) on the last item out[last..]:
  //   S S ... S (min times), then S* as R ::= S R | (empty), or (max - min) nested optionals
  //   R1 ::= S | (empty), Rk ::= S R(k-1) | (empty).
  Status repeat(const std::string& rule_name, std::vector<GrammarElem>& out, size_t last,
                uint64_t min, uint64_t max, size_t item_pos) {
    if (last == out.size()) {
      return error(item_pos, fmt::format("'{}' must follow an item", printable(text_[item_pos])));
    }
    if (max != UINT64_MAX && max < min) {
      return error(item_pos, fmt::format("repetition {{{},{}}} has max < min", min, max));
    }
    const std::vector<GrammarElem> item(out.begin() + static_cast<ptrdiff_t>(last), out.end());
    out.resize(last);
    for (uint64_t i = 0; i < min; ++i) {
      LOUPE_TRY(count(item.size()));
      out.insert(out.end(), item.begin(), item.end());
    }
    if (max == UINT64_MAX) {
      const uint32_t r = generated_symbol(rule_name);
      std::vector<GrammarElem> body = item;
      body.push_back({T::kRuleRef, r});
      body.push_back({T::kAlt, 0});
      body.push_back({T::kEnd, 0});
      LOUPE_TRY(count(body.size()));
      rules_[r] = std::move(body);
      out.push_back({T::kRuleRef, r});
    } else if (max > min) {
      uint32_t prev = 0;
      for (uint64_t k = 1; k <= max - min; ++k) {
        const uint32_t r = generated_symbol(rule_name);
        std::vector<GrammarElem> body = item;
        if (k > 1) body.push_back({T::kRuleRef, prev});
        body.push_back({T::kAlt, 0});
        body.push_back({T::kEnd, 0});
        LOUPE_TRY(count(body.size()));
        rules_[r] = std::move(body);
        prev = r;
      }
      out.push_back({T::kRuleRef, prev});
    }
    return Status();
  }

  Status parse_sequence(const std::string& rule_name, std::vector<GrammarElem>& out, bool nested,
                        int depth) {
    size_t last = out.size();
    while (!eof()) {
      const char c = text_[pos_];
      const size_t item_pos = pos_;
      if (c == '"') {
        ++pos_;
        last = out.size();
        while (cur() != '"') {
          if (eof() || cur() == '\n') return error(item_pos, "unterminated string literal");
          uint32_t cp = 0;
          LOUPE_TRY(parse_char(cp));
          out.push_back({T::kChar, cp});
        }
        ++pos_;
        LOUPE_TRY(count(out.size() - last));
      } else if (c == '[') {
        ++pos_;
        last = out.size();
        T start = T::kChar;
        if (cur() == '^') {
          ++pos_;
          start = T::kCharNot;
        }
        while (cur() != ']') {
          if (eof() || cur() == '\n') return error(item_pos, "unterminated character class");
          uint32_t lo = 0;
          LOUPE_TRY(parse_char(lo));
          out.push_back({out.size() == last ? start : T::kCharAlt, lo});
          if (cur() == '-' && pos_ + 1 < text_.size() && text_[pos_ + 1] != ']') {
            ++pos_;
            uint32_t hi = 0;
            LOUPE_TRY(parse_char(hi));
            if (hi < lo) {
              return error(item_pos, fmt::format("range U+{:X}-U+{:X} is reversed", lo, hi));
            }
            out.push_back({T::kCharRngUpper, hi});
          }
        }
        if (out.size() == last) {
          // `[]` matches nothing and `[^]` anything; keep them expressible.
          if (start == T::kChar) return error(item_pos, "empty character class '[]'");
          out.push_back({T::kCharAny, 0});
        }
        ++pos_;
        LOUPE_TRY(count(out.size() - last));
      } else if (is_word_char(c)) {
        last = out.size();
        const std::string name = parse_name();
        out.push_back({T::kRuleRef, symbol(name, item_pos)});
        LOUPE_TRY(count(1));
      } else if (c == '(') {
        ++pos_;
        skip_space(true);
        const uint32_t sub = generated_symbol(rule_name);
        LOUPE_TRY(parse_alternates(rule_name, sub, true, depth + 1));
        if (cur() != ')') return error(item_pos, "expected ')' to close the group opened here");
        ++pos_;
        last = out.size();
        out.push_back({T::kRuleRef, sub});
        LOUPE_TRY(count(1));
      } else if (c == '.') {
        ++pos_;
        last = out.size();
        out.push_back({T::kCharAny, 0});
        LOUPE_TRY(count(1));
      } else if (c == '*' || c == '+' || c == '?') {
        ++pos_;
        LOUPE_TRY(
            repeat(rule_name, out, last, c == '+' ? 1 : 0, c == '?' ? 1 : UINT64_MAX, item_pos));
      } else if (c == '{') {
        ++pos_;
        skip_space(nested);
        uint64_t min = 0, max = 0;
        LOUPE_TRY(parse_int(min));
        skip_space(nested);
        if (cur() == ',') {
          ++pos_;
          skip_space(nested);
          if (cur() >= '0' && cur() <= '9') {
            LOUPE_TRY(parse_int(max));
          } else {
            max = UINT64_MAX;
          }
          skip_space(nested);
        } else {
          max = min;
        }
        if (cur() != '}') return error(pos_, "expected '}' to close the repetition");
        ++pos_;
        LOUPE_TRY(repeat(rule_name, out, last, min, max, item_pos));
      } else {
        break;
      }
      skip_space(nested);
    }
    return Status();
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<bool> defined_;
  std::vector<size_t> first_ref_;
  size_t n_elements_ = 0;
  int n_generated_ = 0;
};

}  // namespace

uint32_t grammar_class_end(std::span<const GrammarElem> elems, uint32_t pos) {
  ++pos;
  while (elems[pos].type == T::kCharAlt || elems[pos].type == T::kCharRngUpper) ++pos;
  return pos;
}

bool grammar_match_char(std::span<const GrammarElem> elems, uint32_t pos, uint32_t cp) {
  const bool positive = elems[pos].type != T::kCharNot;
  if (elems[pos].type == T::kCharAny) return true;
  bool found = false;
  do {
    if (elems[pos + 1].type == T::kCharRngUpper) {
      found = found || (elems[pos].value <= cp && cp <= elems[pos + 1].value);
      pos += 2;
    } else {
      found = found || elems[pos].value == cp;
      pos += 1;
    }
  } while (elems[pos].type == T::kCharAlt);
  return found == positive;
}

bool grammar_match_range(std::span<const GrammarElem> elems, uint32_t pos, uint32_t low,
                         uint32_t high) {
  if (elems[pos].type == T::kCharAny) return true;
  const bool positive = elems[pos].type != T::kCharNot;
  do {
    uint32_t a = elems[pos].value, b = a;
    if (elems[pos + 1].type == T::kCharRngUpper) {
      b = elems[pos + 1].value;
      pos += 2;
    } else {
      pos += 1;
    }
    if (positive && a <= high && low <= b) return true;
    // A negated class rejects the whole range only if one excluded range covers it.
    if (!positive && a <= low && high <= b) return false;
  } while (elems[pos].type == T::kCharAlt);
  return !positive;
}

uint32_t Grammar::class_example(uint32_t pos) const {
  const auto e = elems();
  if (e[pos].type == T::kCharAny) return 'a';
  // The smallest matching code point is 0x20, 1, 0x80 or just past one of the class's own
  // characters or ranges; prefer printable ASCII.
  std::vector<uint32_t> candidates = {0x20, 1, 0x80};
  for (uint32_t p = pos; p < grammar_class_end(e, pos); ++p) {
    candidates.push_back(e[p].value);
    if (e[p].value < 0x10FFFF) candidates.push_back(e[p].value + 1);
  }
  uint32_t best = kUnreachable;
  const auto rank = [](uint32_t cp) { return (cp >= 0x20 && cp < 0x7F) ? cp : cp + 0x200000; };
  for (uint32_t cp : candidates) {
    if (cp > 0x10FFFF || !grammar_match_char(e, pos, cp)) continue;
    if (best == kUnreachable || rank(cp) < rank(best)) best = cp;
  }
  return best;  // kUnreachable: the class matches nothing
}

void Grammar::analyse() {
  const uint32_t n = n_rules();
  rule_min_.assign(n, kUnreachable);
  best_alt_.assign(n, 0);
  suffix_min_.assign(elems_.size(), kUnreachable);
  std::vector<uint32_t> class_bytes(elems_.size(), 1);
  for (uint32_t p = 0; p < elems_.size(); ++p) {
    const T t = elems_[p].type;
    if (t == T::kChar || t == T::kCharNot || t == T::kCharAny) {
      const uint32_t cp = class_example(p);
      class_bytes[p] = cp == kUnreachable ? kUnreachable : utf8_len(cp);
    }
  }
  // Fixpoint over the rules (Bellman-Ford style); each round settles at least one more rule.
  auto alt_cost = [&](uint32_t p) {
    uint32_t total = 0;
    while (!grammar_is_end(elems_[p])) {
      const GrammarElem& e = elems_[p];
      if (e.type == T::kRuleRef) {
        total = sat_add(total, rule_min_[e.value]);
        ++p;
      } else {
        total = sat_add(total, class_bytes[p]);
        p = grammar_class_end(elems_, p);
      }
    }
    return total;
  };
  for (uint32_t round = 0; round <= n; ++round) {
    bool changed = false;
    for (uint32_t r = 0; r < n; ++r) {
      uint32_t p = rule_start_[r];
      while (true) {
        const uint32_t c = alt_cost(p);
        if (c < rule_min_[r]) {
          rule_min_[r] = c;
          best_alt_[r] = p;
          changed = true;
        }
        while (!grammar_is_end(elems_[p])) ++p;
        if (elems_[p].type == T::kEnd) break;
        ++p;
      }
    }
    if (!changed) break;
  }
  // Suffix costs, right to left within each alternative.
  for (uint32_t p = static_cast<uint32_t>(elems_.size()); p-- > 0;) {
    const GrammarElem& e = elems_[p];
    if (grammar_is_end(e)) {
      suffix_min_[p] = 0;
    } else if (e.type == T::kRuleRef) {
      suffix_min_[p] = sat_add(rule_min_[e.value], suffix_min_[p + 1]);
    } else if (e.type == T::kCharAlt || e.type == T::kCharRngUpper) {
      suffix_min_[p] = suffix_min_[p + 1];  // inside a class; never a stack position
    } else {
      suffix_min_[p] = sat_add(class_bytes[p], suffix_min_[grammar_class_end(elems_, p)]);
    }
  }
}

void Grammar::shortest_suffix(uint32_t pos, std::string& out) const {
  // Nothing for a suffix that cannot complete (or is absurdly long).
  if (suffix_min_[pos] > kMaxShortest) return;
  // Explicit work list instead of recursion: grammars are untrusted and may nest deeply.
  std::vector<uint32_t> todo{pos};
  while (!todo.empty()) {
    uint32_t p = todo.back();
    todo.pop_back();
    if (grammar_is_end(elems_[p])) continue;
    const GrammarElem& e = elems_[p];
    if (e.type == T::kRuleRef) {
      todo.push_back(p + 1);
      todo.push_back(best_alt_[e.value]);
    } else {
      append_utf8(class_example(p), out);
      todo.push_back(grammar_class_end(elems_, p));
    }
  }
}

Expected<Grammar> Grammar::parse(std::string_view text, std::string_view root_name) {
  Parser parser(text);
  LOUPE_TRY(parser.run());
  Grammar g;
  const uint32_t n = static_cast<uint32_t>(parser.rules_.size());
  bool have_root = false;
  for (uint32_t r = 0; r < n; ++r) {
    if (parser.names_[r] == root_name) {
      g.root_ = r;
      have_root = true;
    }
  }
  if (!have_root) {
    return make_error(ErrorCode::kInvalidArgument, "grammar: no rule named '{}' (the start rule)",
                      root_name);
  }
  // Left recursion: rule A reaches B if B can start A's match without consuming anything.
  std::vector<bool> nullable(n, false);
  for (bool changed = true; changed;) {
    changed = false;
    for (uint32_t r = 0; r < n; ++r) {
      if (nullable[r]) continue;
      const auto& rule = parser.rules_[r];
      bool alt_nullable = true;
      for (const GrammarElem& e : rule) {
        if (grammar_is_end(e)) {
          if (alt_nullable) {
            nullable[r] = true;
            changed = true;
            break;
          }
          alt_nullable = true;
        } else if (e.type == T::kRuleRef) {
          alt_nullable = alt_nullable && nullable[e.value];
        } else if (e.type != T::kCharAlt && e.type != T::kCharRngUpper) {
          alt_nullable = false;
        }
      }
    }
  }
  std::vector<std::vector<uint32_t>> left(n);
  for (uint32_t r = 0; r < n; ++r) {
    bool at_left = true;
    for (const GrammarElem& e : parser.rules_[r]) {
      if (grammar_is_end(e)) {
        at_left = true;
      } else if (e.type == T::kRuleRef) {
        if (at_left) left[r].push_back(e.value);
        at_left = at_left && nullable[e.value];
      } else {
        at_left = false;
      }
    }
  }
  std::vector<uint8_t> color(n, 0);  // 0 new, 1 on the path, 2 done
  for (uint32_t start = 0; start < n; ++start) {
    if (color[start]) continue;
    std::vector<std::pair<uint32_t, size_t>> path{{start, 0}};
    color[start] = 1;
    while (!path.empty()) {
      auto& [r, i] = path.back();
      if (i < left[r].size()) {
        const uint32_t next = left[r][i++];
        if (color[next] == 1) {
          return parser.error(parser.def_pos_[next],
                              fmt::format("rule '{}' is left-recursive (it can reach itself "
                                          "without consuming input); rewrite it with repetition",
                                          parser.names_[next]));
        }
        if (color[next] == 0) {
          color[next] = 1;
          path.push_back({next, 0});
        }
      } else {
        color[r] = 2;
        path.pop_back();
      }
    }
  }
  for (uint32_t r = 0; r < n; ++r) {
    g.rule_start_.push_back(static_cast<uint32_t>(g.elems_.size()));
    g.elems_.insert(g.elems_.end(), parser.rules_[r].begin(), parser.rules_[r].end());
  }
  g.names_ = std::move(parser.names_);
  g.analyse();
  return g;
}

namespace {

void print_cp(uint32_t cp, bool in_class, std::string& out) {
  if (cp == '\n') {
    out += "\\n";
  } else if (cp == '\r') {
    out += "\\r";
  } else if (cp == '\t') {
    out += "\\t";
  } else if (cp == '\\' || cp == '"' ||
             (in_class && (cp == ']' || cp == '[' || cp == '-' || cp == '^'))) {
    out += '\\';
    out += static_cast<char>(cp);
  } else if (cp < 0x20 || cp == 0x7F) {
    out += fmt::format("\\x{:02X}", cp);
  } else if (cp > 0x7F && cp < 0xA0) {
    out += fmt::format("\\u{:04X}", cp);
  } else {
    append_utf8(cp, out);
  }
}

}  // namespace

std::string Grammar::print() const {
  std::string out;
  for (uint32_t r = 0; r < n_rules(); ++r) {
    out += names_[r] + " ::=";
    uint32_t p = rule_start_[r];
    while (true) {
      const GrammarElem& e = elems_[p];
      // An empty alternative prints as "" so that a trailing '|' never meets the newline.
      const bool alt_start = p == rule_start_[r] || elems_[p - 1].type == T::kAlt;
      if (alt_start && grammar_is_end(e)) out += " \"\"";
      if (e.type == T::kEnd) break;
      if (e.type == T::kAlt) {
        out += " |";
        ++p;
        continue;
      }
      if (e.type == T::kRuleRef) {
        out += " " + names_[e.value];
        ++p;
      } else if (e.type == T::kCharAny) {
        out += " .";
        ++p;
      } else {
        out += e.type == T::kCharNot ? " [^" : " [";
        const uint32_t end = grammar_class_end(elems_, p);
        for (uint32_t q = p; q < end; ++q) {
          if (elems_[q].type == T::kCharRngUpper) out += '-';
          print_cp(elems_[q].value, true, out);
        }
        out += ']';
        p = end;
      }
    }
    out += '\n';
  }
  return out;
}

}  // namespace loupe::sample
