// The vocabulary as a GGUF file states it (`tokenizer.ggml.*`), before any interpretation.
// model/vocab_load.cpp fills it; Tokenizer::create applies llama.cpp's defaults and rules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace loupe::tokenizer {

inline constexpr int32_t kNoToken = -1;

// `tokenizer.ggml.token_type` values (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
  kCount
};

struct VocabData {
  std::string model;         // tokenizer.ggml.model: llama, gpt2, bert, gemma4, ...
  std::string pre;           // tokenizer.ggml.pre ("" when absent)
  std::string architecture;  // general.architecture
  std::string name;          // general.name (some per-model token rules key on it)

  std::vector<std::string> tokens;   // tokenizer.ggml.tokens
  std::vector<float> scores;         // tokenizer.ggml.scores; empty: all 0
  std::vector<int32_t> token_types;  // tokenizer.ggml.token_type; empty: all normal
  std::vector<std::string> merges;   // tokenizer.ggml.merges ("left right")

  // Special token ids; kNoToken when the key is absent (the model's default applies).
  int32_t bos = kNoToken;
  int32_t eos = kNoToken;
  int32_t eot = kNoToken;
  int32_t eom = kNoToken;
  int32_t unknown = kNoToken;
  int32_t separator = kNoToken;
  int32_t padding = kNoToken;
  int32_t mask = kNoToken;
  int32_t fim_pre = kNoToken;
  int32_t fim_suf = kNoToken;
  int32_t fim_mid = kNoToken;
  int32_t fim_pad = kNoToken;
  int32_t fim_rep = kNoToken;
  int32_t fim_sep = kNoToken;

  // Flags; nullopt when the key is absent.
  std::optional<bool> add_bos;                   // tokenizer.ggml.add_bos_token
  std::optional<bool> add_eos;                   // tokenizer.ggml.add_eos_token
  std::optional<bool> add_sep;                   // tokenizer.ggml.add_sep_token
  std::optional<bool> add_space_prefix;          // tokenizer.ggml.add_space_prefix
  std::optional<bool> remove_extra_whitespaces;  // tokenizer.ggml.remove_extra_whitespaces
  std::optional<bool> normalizer_lowercase;      // tokenizer.ggml.normalizer.lowercase
  std::optional<bool> normalizer_strip_accents;  // tokenizer.ggml.normalizer.strip_accents
};

}  // namespace loupe::tokenizer
