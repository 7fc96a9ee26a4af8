// Text <-> token ids, bit-exact with llama.cpp (llama-vocab.cpp) for SPM (Llama 2, Gemma,
// Phi-3), byte-level BPE with merges (GPT-2, Llama 3, Qwen2/3/3.5, DeepSeek, gpt-oss, ...),
// SentencePiece-style BPE (Gemma 4) and WordPiece (BERT).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tokenizer/vocab.h"

namespace loupe::tokenizer {

enum class TokenizerKind { kSpm, kBpe, kWpm, kCount };

// Per-token attributes (llama.cpp's llama_token_attr bits).
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1 << 0,
  kAttrUnused = 1 << 1,
  kAttrNormal = 1 << 2,
  kAttrControl = 1 << 3,
  kAttrUserDefined = 1 << 4,
  kAttrByte = 1 << 5,
  kAttrNormalized = 1 << 6,
  kAttrLstrip = 1 << 7,
  kAttrRstrip = 1 << 8,
  kAttrSingleWord = 1 << 9,
};

class Tokenizer {
 public:
  // Validates the data and applies the model's defaults. Unknown `model` or `pre` names,
  // out-of-range ids and malformed arrays are errors that name the field.
  static Expected<Tokenizer> create(VocabData data);

  // `add_special`: add BOS/EOS as the file asks (WPM: [CLS] ... [SEP]).
  // `parse_special`: text spelling a control token becomes that token. User-defined tokens
  // are always matched, as in llama.cpp and Hugging Face tokenizers.
  std::vector<int32_t> tokenize(std::string_view text, bool add_special, bool parse_special) const;

  // The bytes a token stands for (may be part of a UTF-8 character). Control and unknown
  // tokens give "" unless `special`.
  std::string token_to_piece(int32_t id, bool special) const;

  // Concatenated pieces with llama.cpp's clean-ups (leading space of SPM, clean_spaces).
  // `remove_special`: drop a leading BOS / trailing EOS the vocabulary adds.
  // `unparse_special`: render control tokens as their text.
  std::string detokenize(std::span<const int32_t> ids, bool remove_special,
                         bool unparse_special) const;

  int32_t n_vocab() const;
  bool valid(int32_t id) const { return id >= 0 && id < n_vocab(); }
  int32_t bos() const;
  int32_t eos() const;
  int32_t eot() const;
  int32_t eom() const;
  int32_t unknown() const;
  int32_t separator() const;
  int32_t padding() const;
  bool add_bos() const;
  bool add_eos() const;
  // End of generation: eos, eot, eom and the tokens llama.cpp recognises by text
  // (<|im_end|>, <|eot_id|>, <|return|>, <end_of_turn>, ...).
  bool is_eog(int32_t id) const;
  const std::vector<int32_t>& eog_ids() const;
  bool is_control(int32_t id) const;  // control or unknown: hidden unless asked for
  const std::string& token_text(int32_t id) const;
  TokenType token_type(int32_t id) const;
  uint32_t token_attr(int32_t id) const;
  float token_score(int32_t id) const;
  TokenizerKind kind() const;
  const std::string& model_name() const;  // tokenizer.ggml.model
  const std::string& pre_name() const;    // the pre-tokenizer in effect

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Turns ids into text one at a time for streaming output: returns only complete UTF-8 and
// holds back a character split across byte tokens until it is complete. Bytes that can never
// form a character are replaced with U+FFFD.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool special = false)
      : tokenizer_(&tokenizer), special_(special) {}
  std::string push(int32_t id);
  // What is still held back (an incomplete character becomes U+FFFD); resets the decoder.
  std::string flush();

 private:
  const Tokenizer* tokenizer_;
  bool special_;
  std::string pending_;
};

}  // namespace loupe::tokenizer
