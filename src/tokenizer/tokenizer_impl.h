// Internal state shared by tokenizer.cpp and the three encoders (encoders.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/pre_configs.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace loupe::tokenizer {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct PairHash {
  using is_transparent = void;
  template <typename A, typename B>
  size_t operator()(const std::pair<A, B>& p) const {
    size_t h = std::hash<std::string_view>{}(p.first);
    return h ^
           (std::hash<std::string_view>{}(p.second) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
  }
};
struct PairEqual {
  using is_transparent = void;
  template <typename A, typename B, typename C, typename D>
  bool operator()(const std::pair<A, B>& x, const std::pair<C, D>& y) const {
    return std::string_view(x.first) == std::string_view(y.first) &&
           std::string_view(x.second) == std::string_view(y.second);
  }
};

struct TokenInfo {
  std::string text;
  float score = 0;
  uint32_t attr = kAttrNormal;
  TokenType type = TokenType::kNormal;
};

struct Tokenizer::Impl {
  TokenizerKind kind = TokenizerKind::kSpm;
  std::string model;
  std::string pre;
  std::vector<TokenInfo> tokens;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> token_to_id;
  std::unordered_map<std::pair<std::string, std::string>, int32_t, PairHash, PairEqual> bpe_ranks;
  size_t max_token_len = 0;

  int32_t bos = kNoToken, eos = kNoToken, eot = kNoToken, eom = kNoToken, unk = kNoToken,
          sep = kNoToken, pad = kNoToken, mask = kNoToken;
  int32_t fim_pre = kNoToken, fim_suf = kNoToken, fim_mid = kNoToken, fim_pad = kNoToken,
          fim_rep = kNoToken, fim_sep = kNoToken;

  bool add_bos = false;
  bool add_eos = false;
  bool add_sep = false;
  bool add_space_prefix = false;
  bool remove_extra_whitespaces = false;
  bool clean_spaces = false;
  bool escape_whitespaces = true;
  bool ignore_merges = false;
  bool byte_encode = true;
  bool gemma4 = false;
  bool lowercase = true;      // WPM normalizer
  bool strip_accents = true;  // WPM normalizer

  std::optional<PreTokenizer> pretokenizer;  // BPE only
  std::vector<int32_t> eog;                  // sorted
  std::vector<int32_t> special_tokens;       // matched in text, longest first
  std::vector<std::string> pieces;           // token_to_piece(id, special=true)

  int32_t find(std::string_view text) const {
    auto it = token_to_id.find(text);
    return it == token_to_id.end() ? kNoToken : it->second;
  }
  int32_t find_rank(std::string_view left, std::string_view right) const {
    auto it = bpe_ranks.find(std::pair<std::string_view, std::string_view>(left, right));
    return it == bpe_ranks.end() ? -1 : it->second;
  }

  // Encoders for one run of plain text (encoders.cpp).
  void encode_spm(const std::string& text, std::vector<int32_t>& out) const;
  void encode_bpe(std::string_view text, std::vector<int32_t>& out) const;
  void encode_wpm(std::string_view text, std::vector<int32_t>& out) const;
  int32_t spm_byte_token(uint8_t byte) const;
};

}  // namespace loupe::tokenizer
