// Pre-tokenization: splitting text into words with the regexes a BPE vocabulary names in
// `tokenizer.ggml.pre`, with llama.cpp's semantics (unicode_regex_split).
//
// llama.cpp runs each regex on a "collapsed" text when it uses Unicode classes: every code
// point >= 0x80 becomes one byte standing for its class (letter, number, ...), or 0x0B when it
// is whitespace, and `\p{L}` becomes `[<letter byte>A-Za-z]`, etc. So `\p{Lu}` and `\p{Ll}`
// both mean "any letter" outside ASCII, and `\s` is llama.cpp's whitespace set. We do exactly
// that, with PCRE2 (JIT) as the engine. Regexes without classes run on the code points (as
// UTF-8) with non-ASCII whitespace replaced by 0x0B, as llama.cpp's std::wregex path does.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace loupe::tokenizer {

class PreTokenizer {
 public:
  // Compiles the regexes (applied in order, each splitting the pieces of the previous one).
  static Expected<PreTokenizer> create(const std::vector<std::string>& regexes);

  // Splits `text` into words. Invalid UTF-8 bytes become U+FFFD first (as in llama.cpp).
  // With `byte_encode`, each word is mapped through GPT-2's byte alphabet.
  // Thread-safe.
  std::vector<std::string> split(std::string_view text, bool byte_encode) const;

 private:
  struct Pattern;
  std::vector<std::shared_ptr<const Pattern>> patterns_;
  bool any_collapsed_ = false;
  bool any_wide_ = false;
};

}  // namespace loupe::tokenizer
