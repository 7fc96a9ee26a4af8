// GBNF grammars (llama.cpp's grammars/README.md dialect): rules `name ::= alternates`, string
// literals with \x \u \U \t \n \r escapes, character classes `[a-z]` / `[^"\\]`, `.`, groups,
// `* + ?` and `{m}`, `{m,}`, `{m,n}` repetitions, `#` comments. A parsed grammar is a flat array
// of elements per rule, the layout llama.cpp's llama_grammar_element uses, so its matcher and
// ours reason about the same positions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace loupe::sample {

enum class GrammarElemType : uint8_t {
  kEnd,      // end of a rule
  kAlt,      // start of the next alternative
  kRuleRef,  // value: rule id
  kChar,  // value: code point; starts a positive class (may be followed by kCharAlt/kCharRngUpper)
  kCharNot,       // value: code point; starts a negated class
  kCharRngUpper,  // value: upper bound of a range whose lower bound is the previous element
  kCharAlt,       // value: another code point (or range start) of the same class
  kCharAny,       // `.`: any code point
  kCount
};

struct GrammarElem {
  GrammarElemType type;
  uint32_t value;
};

class Grammar {
 public:
  // Errors give the line and column ("grammar:3:14: ...") and what was expected. Checks: every
  // referenced rule is defined, `root_name` exists, no rule is left-recursive (the matcher's
  // stack expansion would not terminate), and repetition counts stay within limits.
  static Expected<Grammar> parse(std::string_view text, std::string_view root_name = "root");

  uint32_t n_rules() const { return static_cast<uint32_t>(rule_start_.size()); }
  uint32_t root() const { return root_; }
  const std::string& rule_name(uint32_t rule) const { return names_[rule]; }
  // All rules' elements, concatenated; a rule's alternatives start at rule_start(rule).
  std::span<const GrammarElem> elems() const { return elems_; }
  uint32_t rule_start(uint32_t rule) const { return rule_start_[rule]; }

  // Fewest UTF-8 bytes a string derived from `rule` can have (kUnreachable if none is finite).
  uint32_t rule_min_bytes(uint32_t rule) const { return rule_min_[rule]; }
  // Fewest bytes to finish the alternative from element `pos` to its end.
  uint32_t suffix_min_bytes(uint32_t pos) const { return suffix_min_[pos]; }
  // The start of the alternative of `rule` that realises rule_min_bytes.
  uint32_t best_alt(uint32_t rule) const { return best_alt_[rule]; }
  // A code point accepted by the character class that starts at `pos` (printable when possible),
  // kUnreachable if it accepts none.
  uint32_t class_example(uint32_t pos) const;
  // Appends to `out` the shortest string (UTF-8) for elements pos .. end of the alternative;
  // nothing if that is longer than kMaxShortest bytes or cannot complete.
  void shortest_suffix(uint32_t pos, std::string& out) const;
  static constexpr uint32_t kMaxShortest = 1u << 20;

  // GBNF text of the parsed rules (generated rules included); parse(print()) is equivalent.
  std::string print() const;

  static constexpr uint32_t kUnreachable = 0xFFFFFFFFu;

 private:
  void analyse();

  std::vector<GrammarElem> elems_;
  std::vector<uint32_t> rule_start_;
  std::vector<std::string> names_;
  std::vector<uint32_t> rule_min_;
  std::vector<uint32_t> suffix_min_;
  std::vector<uint32_t> best_alt_;
  uint32_t root_ = 0;
};

// True if the class element at `pos` (kChar/kCharNot/kCharAny and what follows) matches `cp`.
bool grammar_match_char(std::span<const GrammarElem> elems, uint32_t pos, uint32_t cp);
// True if some code point in [low, high] could match the class at `pos` (partial UTF-8 checks).
bool grammar_match_range(std::span<const GrammarElem> elems, uint32_t pos, uint32_t low,
                         uint32_t high);
// The first element after the class that starts at `pos`.
uint32_t grammar_class_end(std::span<const GrammarElem> elems, uint32_t pos);

inline bool grammar_is_end(const GrammarElem& e) {
  return e.type == GrammarElemType::kEnd || e.type == GrammarElemType::kAlt;
}

}  // namespace loupe::sample
