// Vocabulary set-up (llama.cpp's llama_vocab::impl::load), special-token partitioning and
// detokenization. The encoders are in encoders.cpp.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>

#include "base/log.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace loupe::tokenizer {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's space

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (s.find(from) == std::string::npos) return;
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size())
    out.append(s, pos, hit - pos).append(to);
  out.append(s, pos, std::string::npos);
  s.swap(out);
}

uint32_t attr_from_type(int32_t type) {
  switch (static_cast<TokenType>(type)) {
    case TokenType::kNormal:
      return kAttrNormal;
    case TokenType::kUnknown:
      return kAttrUnknown;
    case TokenType::kControl:
      return kAttrControl;
    case TokenType::kUserDefined:
      return kAttrUserDefined;
    case TokenType::kUnused:
      return kAttrUnused;
    case TokenType::kByte:
      return kAttrByte;
    default:
      return kAttrUndefined;
  }
}

// The byte of a <0xXX> token (strtol semantics: stops at the first non-hex character).
uint8_t byte_of(const std::string& text) {
  uint32_t v = 0;
  for (size_t i = 3; i < 5 && i < text.size() && std::isxdigit(static_cast<unsigned char>(text[i]));
       ++i)
    v = v * 16 + (std::isdigit(static_cast<unsigned char>(text[i]))
                      ? text[i] - '0'
                      : (std::tolower(static_cast<unsigned char>(text[i])) - 'a' + 10));
  return static_cast<uint8_t>(v);
}

// A byte-level BPE token's text back to bytes (llama.cpp's llama_decode_text).
std::string decode_byte_level(const std::string& text) {
  std::string out;
  for (uint32_t c : decode_utf8(text)) {
    int b = codepoint_to_byte(c);
    if (b >= 0) {
      out.push_back(static_cast<char>(b));
    } else {
      std::string utf8;
      append_utf8(c, utf8);
      out += "[UNK_BYTE_0x";
      for (unsigned char u : utf8) out += fmt::format("{:02x}", u);
      out += text + "]";
    }
  }
  return out;
}

bool c_isspace(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

// llama.cpp's clean_up_tokenization_spaces, three passes over the bytes.
void clean_spaces(std::string& t) {
  // " ?", " !", " .", " ,": drop the space.
  size_t total = t.empty() ? 0 : 1;
  for (size_t i = 1; i < t.size(); ++i) {
    char x = t[i];
    if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
    t[total++] = x;
  }
  t.resize(total);
  // " ' ": drop both spaces.
  total = t.empty() ? 0 : 1;
  const size_t n2 = t.size();
  for (size_t i = 1; i < n2; ++i) {
    char x = t[i];
    if (x == '\'' && i + 1 < n2 && t[i - 1] == ' ' && t[i + 1] == ' ') {
      --total;
      t[++i] = '\0';
    }
    t[total++] = x;
  }
  t.resize(total);
  // " 's", " 'm", " 're", " 've": drop the space.
  total = t.empty() ? 0 : 1;
  const size_t n3 = t.size();
  for (size_t i = 1; i < n3; ++i) {
    char x = t[i];
    if (t[i - 1] == ' ' && x == '\'' && i + 1 < n3) {
      char x1 = t[i + 1];
      if (x1 == 's' || x1 == 'm') {
        --total;
      } else if (i + 2 < n3) {
        char x2 = t[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --total;
      }
    }
    t[total++] = x;
  }
  t.resize(total);
}

// Tokens llama.cpp recognises by text (llama-vocab.cpp, "auto-detect special tokens").
constexpr const char* kEotTexts[] = {
    "<|eot_id|>",        "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>",   "<EOT>",      "_<EOT>",  "[EOT]",         "<｜end▁of▁sentence｜>",
    "<end_of_utterance>"};
constexpr const char* kEomTexts[] = {"<|eom_id|>"};
constexpr const char* kFimPreTexts[] = {"<|fim_prefix|>",  "<fim-prefix>", "<fim_prefix>",
                                        "<｜fim▁begin｜>", "<PRE>",        "▁<PRE>",
                                        "<|code_prefix|>", "<|prefix|>"};
constexpr const char* kFimSufTexts[] = {"<|fim_suffix|>",  "<fim-suffix>", "<fim_suffix>",
                                        "<｜fim▁hole｜>",  "<SUF>",        "▁<SUF>",
                                        "<|code_suffix|>", "<|suffix|>"};
constexpr const char* kFimMidTexts[] = {"<|fim_middle|>",  "<fim-middle>", "<fim_middle>",
                                        "<｜fim▁end｜>",   "<MID>",        "▁<MID>",
                                        "<|code_middle|>", "<|middle|>"};
constexpr const char* kFimPadTexts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
constexpr const char* kFimRepTexts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
                                        "<reponame>"};
constexpr const char* kFimSepTexts[] = {"<|file_sep|>"};
constexpr const char* kEogTexts[] = {"<|eot_id|>",
                                     "<|im_end|>",
                                     "<|end|>",
                                     "<|return|>",
                                     "<|call|>",
                                     "<|flush|>",
                                     "<|calls|>",
                                     "<end_of_turn>",
                                     "<|endoftext|>",
                                     "</s>",
                                     "<|eom_id|>",
                                     "<EOT>",
                                     "_<EOT>",
                                     "[EOT]",
                                     "[EOS]",
                                     "<|end_of_text|>",
                                     "<end_of_utterance>",
                                     "<eos>",
                                     "<turn|>",
                                     "<|tool_response>",
                                     "<｜end▁of▁sentence｜>"};

template <size_t N>
bool is_one_of(const std::string& s, const char* const (&list)[N]) {
  for (const char* t : list)
    if (s == t) return true;
  return false;
}

std::string lower_ascii(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Expected<Tokenizer> Tokenizer::create(VocabData data) {
  auto impl = std::make_shared<Impl>();
  Impl& v = *impl;
  v.model = data.model;
  std::string pre = data.pre;

  PreConfig pre_config;
  if (data.model == "llama") {
    v.kind = TokenizerKind::kSpm;
    v.bos = 1, v.eos = 2, v.unk = 0;
  } else if (data.model == "bert") {
    v.kind = TokenizerKind::kWpm;
    v.bos = 101, v.unk = 100, v.sep = 102, v.pad = 0, v.mask = 103;
  } else if (data.model == "gpt2" || data.model == "gemma4") {
    v.kind = TokenizerKind::kBpe;
    if (data.model == "gpt2")
      v.bos = v.eos = 11;
    else
      pre = "gemma4";  // llama.cpp ignores the file's pre for this model
  } else if (data.model == "t5" || data.model == "rwkv" || data.model == "plamo2" ||
             data.model == "hybriddna" || data.model == "whitespace" || data.model == "no_vocab" ||
             data.model == "none") {
    return make_error(ErrorCode::kUnsupported,
                      "tokenizer model '{}' (tokenizer.ggml.model) is not supported; supported: "
                      "llama (SPM), gpt2 and gemma4 (BPE), bert (WPM)",
                      data.model);
  } else {
    return make_error(ErrorCode::kInvalidArgument,
                      "unknown tokenizer model '{}' in tokenizer.ggml.model; expected llama, "
                      "gpt2, gemma4 or bert",
                      data.model);
  }

  if (v.kind == TokenizerKind::kBpe) {
    LOUPE_ASSIGN_OR_RETURN(pre_config, find_pre_config(pre));
    v.pre = pre_config.name;
    v.add_space_prefix = false;
    v.escape_whitespaces = pre_config.escape_whitespaces;
    v.clean_spaces = pre_config.clean_spaces.value_or(true);
    v.ignore_merges = pre_config.ignore_merges;
    v.byte_encode = pre_config.byte_encode;
    v.gemma4 = pre_config.gemma4;
    v.add_bos = pre_config.force_add_bos;
    v.add_sep = pre_config.add_sep;
    if (pre_config.no_bos) v.bos = kNoToken;
    LOUPE_ASSIGN_OR_RETURN(auto pretokenizer, PreTokenizer::create(pre_config.regexes));
    v.pretokenizer = std::move(pretokenizer);
  } else if (v.kind == TokenizerKind::kSpm) {
    v.pre = "default";
    v.add_space_prefix = true;
    v.clean_spaces = false;
    v.add_bos = true;
  } else {
    v.pre = "default";
    v.clean_spaces = true;
    v.add_bos = true;
    v.add_sep = true;
  }
  if (data.add_space_prefix) v.add_space_prefix = *data.add_space_prefix;
  if (data.remove_extra_whitespaces) v.remove_extra_whitespaces = *data.remove_extra_whitespaces;

  // Tokens.
  const size_t n = data.tokens.size();
  if (n == 0) return make_error(ErrorCode::kCorrupt, "tokenizer.ggml.tokens is missing or empty");
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    return make_error(ErrorCode::kOutOfRange, "tokenizer.ggml.tokens has {} entries", n);
  if (!data.scores.empty() && data.scores.size() < n)
    return make_error(ErrorCode::kCorrupt, "tokenizer.ggml.scores has {} entries for {} tokens",
                      data.scores.size(), n);
  if (!data.token_types.empty() && data.token_types.size() < n)
    return make_error(ErrorCode::kCorrupt, "tokenizer.ggml.token_type has {} entries for {} tokens",
                      data.token_types.size(), n);
  v.tokens.resize(n);
  v.token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    TokenInfo& t = v.tokens[i];
    t.text = std::move(data.tokens[i]);
    if (t.text.empty()) t.text = fmt::format("[EMPTY_{}]", i);
    t.score = data.scores.empty() ? 0.0f : data.scores[i];
    if (!data.token_types.empty()) {
      int32_t type = data.token_types[i];
      t.type = type >= 0 && type < static_cast<int32_t>(TokenType::kCount)
                   ? static_cast<TokenType>(type)
                   : TokenType::kUndefined;
      t.attr = attr_from_type(type);
    }
    v.token_to_id[t.text] = static_cast<int32_t>(i);  // a duplicate: the later id wins
    v.max_token_len = std::max(v.max_token_len, t.text.size());
  }

  if (v.kind == TokenizerKind::kBpe) {
    v.bpe_ranks.reserve(data.merges.size());
    for (size_t i = 0; i < data.merges.size(); ++i) {
      const std::string& m = data.merges[i];
      size_t pos = m.find(' ', 1);
      std::pair<std::string, std::string> key;
      if (pos != std::string::npos) key = {m.substr(0, pos), m.substr(pos + 1)};
      v.bpe_ranks.emplace(std::move(key), static_cast<int32_t>(i));  // the first rank wins
    }
  }

  // Special ids: the file's when in range, else the model's default.
  auto set_id = [&](int32_t& id, int32_t from_file, const char* key) {
    if (from_file == kNoToken) return;
    if (from_file >= 0 && static_cast<size_t>(from_file) < n)
      id = from_file;
    else if (from_file != INT32_MAX)
      LOUPE_LOG_WARN("bad special token: {} = {} (n_vocab {}), using {}", key, from_file, n, id);
  };
  set_id(v.bos, data.bos, "tokenizer.ggml.bos_token_id");
  set_id(v.eos, data.eos, "tokenizer.ggml.eos_token_id");
  set_id(v.eot, data.eot, "tokenizer.ggml.eot_token_id");
  set_id(v.eom, data.eom, "tokenizer.ggml.eom_token_id");
  set_id(v.unk, data.unknown, "tokenizer.ggml.unknown_token_id");
  set_id(v.sep, data.separator, "tokenizer.ggml.seperator_token_id");
  set_id(v.pad, data.padding, "tokenizer.ggml.padding_token_id");
  set_id(v.mask, data.mask, "tokenizer.ggml.mask_token_id");
  set_id(v.fim_pre, data.fim_pre, "tokenizer.ggml.fim_pre_token_id");
  set_id(v.fim_suf, data.fim_suf, "tokenizer.ggml.fim_suf_token_id");
  set_id(v.fim_mid, data.fim_mid, "tokenizer.ggml.fim_mid_token_id");
  set_id(v.fim_pad, data.fim_pad, "tokenizer.ggml.fim_pad_token_id");
  set_id(v.fim_rep, data.fim_rep, "tokenizer.ggml.fim_rep_token_id");
  set_id(v.fim_sep, data.fim_sep, "tokenizer.ggml.fim_sep_token_id");
  // Defaults that do not exist in a small vocabulary are no tokens at all.
  for (int32_t* id : {&v.bos, &v.eos, &v.eot, &v.eom, &v.unk, &v.sep, &v.pad, &v.mask})
    if (*id >= static_cast<int32_t>(n)) *id = kNoToken;

  if (data.add_bos) v.add_bos = *data.add_bos;
  if (data.add_eos) v.add_eos = *data.add_eos;
  if (data.add_sep) v.add_sep = *data.add_sep;
  if (pre_config.gemma4) v.add_bos = true;  // llama.cpp overrides Gemma 4's file value
  v.lowercase = data.normalizer_lowercase.value_or(true);
  v.strip_accents = data.normalizer_strip_accents.value_or(v.lowercase);

  // Special tokens recognised by text; they are made control tokens.
  // llama.cpp takes the first match in hash order; we take the first text of the list that
  // the vocabulary has (<|eot_id|> before <|end_of_text|>), which is deterministic.
  auto detect = [&](int32_t& id, const auto& texts) {
    if (id != kNoToken) return;
    for (const char* text : texts) {
      int32_t found = v.find(text);
      if (found == kNoToken) continue;
      id = found;
      v.tokens[found].attr |= kAttrControl;
      return;
    }
  };
  detect(v.eot, kEotTexts);
  detect(v.eom, kEomTexts);
  detect(v.fim_pre, kFimPreTexts);
  detect(v.fim_suf, kFimSufTexts);
  detect(v.fim_mid, kFimMidTexts);
  detect(v.fim_pad, kFimPadTexts);
  detect(v.fim_rep, kFimRepTexts);
  detect(v.fim_sep, kFimSepTexts);
  // Control tokens named "unused" are unused.
  for (TokenInfo& t : v.tokens)
    if ((t.attr & kAttrControl) && t.text.find("unused") != std::string::npos)
      t.attr |= kAttrUnused;

  // End of generation.
  std::vector<int32_t> eog;
  for (int32_t id : {v.fim_pad, v.fim_rep, v.fim_sep})
    if (id != kNoToken) eog.push_back(id);
  for (size_t i = 0; i < n; ++i) {
    if (!is_one_of(v.tokens[i].text, kEogTexts)) continue;
    eog.push_back(static_cast<int32_t>(i));
    v.tokens[i].attr |= kAttrControl;
  }
  // gpt-oss (o200k_harmony): these are always rendered.
  for (TokenInfo& t : v.tokens)
    if (t.text == "<|channel|>" || t.text == "<|message|>" || t.text == "<|start|>" ||
        t.text == "<|constrain|>")
      t.attr = kAttrUserDefined;
  for (int32_t id : {v.eos, v.eot, v.eom})
    if (id != kNoToken) eog.push_back(id);
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  auto eog_with_text = [&](const char* text) {
    for (int32_t id : eog)
      if (v.tokens[id].text == text) return id;
    return kNoToken;
  };
  auto drop_eog = [&](int32_t id, uint32_t attr) {
    eog.erase(std::find(eog.begin(), eog.end(), id));
    v.tokens[id].attr = attr;
  };
  // o200k_harmony and solar-open: <|end|> ends a message, not the generation.
  if (int32_t end = eog_with_text("<|end|>"); end != kNoToken) {
    bool has_return = eog_with_text("<|return|>") != kNoToken;
    bool has_call = eog_with_text("<|call|>") != kNoToken || eog_with_text("<|calls|>") != kNoToken;
    bool has_flush = eog_with_text("<|flush|>") != kNoToken;
    if ((has_return && has_call) || (has_call && has_flush)) drop_eog(end, kAttrUserDefined);
  }
  // Gemma 4: </s> is an ordinary token.
  if (eog_with_text("<|tool_response>") != kNoToken) {
    if (int32_t s = eog_with_text("</s>"); s != kNoToken) drop_eog(s, kAttrNormal);
  }
  v.eog = std::move(eog);

  // Tokens matched in raw text, longest first.
  for (size_t i = 0; i < n; ++i)
    if (v.tokens[i].attr & (kAttrControl | kAttrUserDefined | kAttrUnknown))
      v.special_tokens.push_back(static_cast<int32_t>(i));
  std::stable_sort(v.special_tokens.begin(), v.special_tokens.end(), [&](int32_t a, int32_t b) {
    return v.tokens[a].text.size() > v.tokens[b].text.size();
  });

  // Pieces, as token_to_piece(special = true).
  v.pieces.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const TokenInfo& t = v.tokens[i];
    std::string& p = v.pieces[i];
    if (t.attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) {
      p = t.text;
    } else if (t.attr & kAttrNormal) {
      if (v.kind != TokenizerKind::kBpe || v.escape_whitespaces) {
        p = t.text;
        replace_all(p, kSpaceMarker, " ");
      } else {
        p = decode_byte_level(t.text);
      }
    } else if (t.attr & kAttrByte) {
      p = std::string(1, static_cast<char>(byte_of(t.text)));
    }
  }

  // Per-token strip rules llama.cpp keys on names.
  auto set_attr = [&](const char* text, uint32_t attr, bool on) {
    int32_t id = v.find(text);
    if (id == kNoToken) return;
    v.tokens[id].attr = on ? (v.tokens[id].attr | attr) : (v.tokens[id].attr & ~attr);
  };
  const std::string name = lower_ascii(data.name);
  auto contains = [](const std::string& s, std::initializer_list<const char*> subs) {
    for (const char* sub : subs)
      if (s.find(sub) != std::string::npos) return true;
    return false;
  };
  if (contains(data.pre, {"jina-v2-de", "jina-v2-es", "jina-v2-code"}) ||
      contains(data.architecture, {"nomic-bert-moe", "jina-bert-v3"})) {
    set_attr("<mask>", kAttrLstrip, true);
  } else if (contains(name, {"phi-3", "phi3"})) {
    for (int32_t id : v.special_tokens) v.tokens[id].attr |= kAttrRstrip;
    set_attr("</s>", kAttrRstrip, true);
    for (const char* t : {"<unk>", "<s>", "<|endoftext|>"}) set_attr(t, kAttrRstrip, false);
  } else if (contains(name, {"modern-bert"})) {
    set_attr("[MASK]", kAttrLstrip, true);
  }

  return Tokenizer(std::move(impl));
}

namespace {

struct Fragment {
  int32_t token = kNoToken;  // kNoToken: raw text
  size_t offset = 0;
  size_t length = 0;
};

}  // namespace

std::vector<int32_t> Tokenizer::tokenize(std::string_view text, bool add_special,
                                         bool parse_special) const {
  const Impl& v = *impl_;
  // Split out the special tokens (llama.cpp's tokenizer_st_partition). Control and unknown
  // tokens only when asked; user-defined ones always.
  std::vector<Fragment> fragments;
  if (!text.empty()) fragments.push_back({kNoToken, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t id : v.special_tokens) {
    const TokenInfo& t = v.tokens[id];
    if (!parse_special && (t.attr & (kAttrControl | kAttrUnknown))) continue;
    const std::string_view special = t.text;
    next.clear();
    bool changed = false;
    for (const Fragment& f : fragments) {
      if (f.token != kNoToken) {
        next.push_back(f);
        continue;
      }
      size_t off = f.offset, len = f.length;
      while (true) {
        size_t match = text.substr(0, off + len).find(special, off);
        if (match == std::string_view::npos) {
          if (len > 0) next.push_back({kNoToken, off, len});
          break;
        }
        changed = true;
        size_t left = match - off;
        if (t.attr & kAttrLstrip)
          while (left > 0 && c_isspace(text[off + left - 1])) --left;
        if (left > 0) next.push_back({kNoToken, off, left});
        next.push_back({id, 0, 0});
        size_t right_off = match + special.size();
        size_t right_len = off + len - right_off;
        if (t.attr & kAttrRstrip)
          while (right_len > 0 && c_isspace(text[right_off])) ++right_off, --right_len;
        off = right_off;
        len = right_len;
        if (len == 0) break;
      }
    }
    if (changed) fragments.swap(next);
  }

  std::vector<int32_t> out;
  auto fragment_text = [&](const Fragment& f) { return text.substr(f.offset, f.length); };
  switch (v.kind) {
    case TokenizerKind::kSpm: {
      if (add_special && v.add_bos && v.bos != kNoToken) out.push_back(v.bos);
      bool prev_special = true;  // the first text gets the leading space too
      for (const Fragment& f : fragments) {
        if (f.token != kNoToken) {
          out.push_back(f.token);
          prev_special = true;
          continue;
        }
        std::string s;
        if (v.add_space_prefix && prev_special) s = " ";
        s += fragment_text(f);
        replace_all(s, " ", kSpaceMarker);
        v.encode_spm(s, out);
        prev_special = false;
      }
      if (add_special && v.add_eos && v.eos != kNoToken) out.push_back(v.eos);
      break;
    }
    case TokenizerKind::kBpe: {
      if (add_special && v.add_bos && v.bos != kNoToken) out.push_back(v.bos);
      for (const Fragment& f : fragments) {
        if (f.token != kNoToken) {
          out.push_back(f.token);
        } else if (v.escape_whitespaces) {
          std::string s(fragment_text(f));
          replace_all(s, " ", kSpaceMarker);
          v.encode_bpe(s, out);
        } else {
          v.encode_bpe(fragment_text(f), out);
        }
      }
      if (add_special && v.add_eos && v.eos != kNoToken) out.push_back(v.eos);
      break;
    }
    case TokenizerKind::kWpm: {
      // llama.cpp adds [CLS] ... [SEP] whenever add_special, whatever add_bos says.
      if (add_special && v.bos != kNoToken) out.push_back(v.bos);
      for (const Fragment& f : fragments) {
        if (f.token != kNoToken)
          out.push_back(f.token);
        else
          v.encode_wpm(fragment_text(f), out);
      }
      if (add_special && v.sep != kNoToken) out.push_back(v.sep);
      break;
    }
    case TokenizerKind::kCount:
      break;
  }
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool special) const {
  const Impl& v = *impl_;
  if (!valid(id)) return {};
  if (!special && (v.tokens[id].attr & (kAttrUnknown | kAttrControl))) return {};
  return v.pieces[id];
}

std::string Tokenizer::detokenize(std::span<const int32_t> ids, bool remove_special,
                                  bool unparse_special) const {
  const Impl& v = *impl_;
  bool remove_space = v.add_space_prefix;
  if (remove_special && v.add_bos && !ids.empty() && ids.front() == v.bos) {
    remove_space = false;  // llama.cpp keeps the space after a removed BOS
    ids = ids.subspan(1);
  }
  if (remove_special && v.add_eos && !ids.empty() && ids.back() == v.eos)
    ids = ids.first(ids.size() - 1);

  std::string text;
  for (int32_t id : ids) {
    std::string piece = token_to_piece(id, unparse_special);
    std::string_view p = piece;
    if (remove_space && !p.empty() && p.front() == ' ') p.remove_prefix(1);
    remove_space = false;
    text += p;
  }
  if (v.clean_spaces) clean_spaces(text);
  return text;
}

int32_t Tokenizer::n_vocab() const {
  return static_cast<int32_t>(impl_->tokens.size());
}
int32_t Tokenizer::bos() const {
  return impl_->bos;
}
int32_t Tokenizer::eos() const {
  return impl_->eos;
}
int32_t Tokenizer::eot() const {
  return impl_->eot;
}
int32_t Tokenizer::eom() const {
  return impl_->eom;
}
int32_t Tokenizer::unknown() const {
  return impl_->unk;
}
int32_t Tokenizer::separator() const {
  return impl_->sep;
}
int32_t Tokenizer::padding() const {
  return impl_->pad;
}
bool Tokenizer::add_bos() const {
  return impl_->add_bos;
}
bool Tokenizer::add_eos() const {
  return impl_->add_eos;
}
bool Tokenizer::is_eog(int32_t id) const {
  return id != kNoToken && std::binary_search(impl_->eog.begin(), impl_->eog.end(), id);
}
const std::vector<int32_t>& Tokenizer::eog_ids() const {
  return impl_->eog;
}
bool Tokenizer::is_control(int32_t id) const {
  return valid(id) && (impl_->tokens[id].attr & (kAttrControl | kAttrUnknown)) != 0;
}
const std::string& Tokenizer::token_text(int32_t id) const {
  static const std::string kEmpty;
  return valid(id) ? impl_->tokens[id].text : kEmpty;
}
TokenType Tokenizer::token_type(int32_t id) const {
  return valid(id) ? impl_->tokens[id].type : TokenType::kUndefined;
}
uint32_t Tokenizer::token_attr(int32_t id) const {
  return valid(id) ? impl_->tokens[id].attr : 0;
}
float Tokenizer::token_score(int32_t id) const {
  return valid(id) ? impl_->tokens[id].score : 0;
}
TokenizerKind Tokenizer::kind() const {
  return impl_->kind;
}
const std::string& Tokenizer::model_name() const {
  return impl_->model;
}
const std::string& Tokenizer::pre_name() const {
  return impl_->pre;
}

std::string StreamDecoder::push(int32_t id) {
  pending_ += tokenizer_->token_to_piece(id, special_);
  size_t complete = complete_utf8_prefix(pending_);
  std::string out = sanitize_utf8(std::string_view(pending_).substr(0, complete));
  pending_.erase(0, complete);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = sanitize_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace loupe::tokenizer
