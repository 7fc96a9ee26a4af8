#include "model/vocab_load.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/log.h"

namespace loupe::model {
namespace {

Status wrong_type(const gguf::File& f, std::string_view key, std::string_view expected) {
  return make_error(ErrorCode::kCorrupt, "{}: metadata key {} is not {}", f.path(), key, expected);
}

// A string array; `required` makes its absence an error.
Status read_strings(const gguf::File& f, std::string_view key, bool required,
                    std::vector<std::string>& out) {
  const gguf::Value* v = f.find(key);
  if (v == nullptr) {
    if (!required) return Status::ok_status();
    return make_error(ErrorCode::kNotFound,
                      "{}: metadata key {} is missing; the file has no usable vocabulary", f.path(),
                      key);
  }
  if (!v->is_array() || (v->array_type() != gguf::ValueType::kString && !v->array().empty()))
    return wrong_type(f, key, "an array of strings");
  out.reserve(v->array().size());
  for (const gguf::Value& item : v->array()) out.push_back(*item.as_string());
  return Status::ok_status();
}

Status read_id(const gguf::File& f, std::string_view key, int32_t& out) {
  const gguf::Value* v = f.find(key);
  if (v == nullptr) return Status::ok_status();
  std::optional<int64_t> id = v->as_int();
  if (!id) return wrong_type(f, key, "an integer");
  if (*id < 0 || *id > std::numeric_limits<int32_t>::max()) {
    // 0xFFFFFFFF is how converters write "none"; llama.cpp then keeps the model's default.
    if (*id != 0xFFFFFFFFll)
      LOUPE_LOG_WARN("{}: {} = {} is not a token id; ignored", f.path(), key, *id);
    return Status::ok_status();
  }
  out = static_cast<int32_t>(*id);
  return Status::ok_status();
}

Status read_flag(const gguf::File& f, std::string_view key, std::optional<bool>& out) {
  const gguf::Value* v = f.find(key);
  if (v == nullptr) return Status::ok_status();
  std::optional<bool> b = v->as_bool();
  if (!b) return wrong_type(f, key, "a bool");
  out = *b;
  return Status::ok_status();
}

}  // namespace

Expected<tokenizer::VocabData> load_vocab(const gguf::File& f) {
  tokenizer::VocabData d;
  const gguf::Value* model = f.find("tokenizer.ggml.model");
  if (model == nullptr)
    return make_error(
        ErrorCode::kNotFound,
        "{}: metadata key tokenizer.ggml.model is missing; the file has no vocabulary", f.path());
  if (!model->is_string()) return wrong_type(f, "tokenizer.ggml.model", "a string");
  d.model = *model->as_string();
  if (const gguf::Value* pre = f.find("tokenizer.ggml.pre")) {
    if (!pre->is_string()) return wrong_type(f, "tokenizer.ggml.pre", "a string");
    d.pre = *pre->as_string();
  }
  d.architecture = f.architecture();
  d.name = f.get_string_or("general.name", "");

  LOUPE_TRY(read_strings(f, "tokenizer.ggml.tokens", true, d.tokens));
  const bool needs_merges = d.model == "gpt2" || d.model == "gemma4";
  LOUPE_TRY(read_strings(f, "tokenizer.ggml.merges", needs_merges, d.merges));

  if (const gguf::Value* v = f.find("tokenizer.ggml.scores")) {
    if (!v->is_array()) return wrong_type(f, "tokenizer.ggml.scores", "an array of numbers");
    d.scores.reserve(v->array().size());
    for (const gguf::Value& item : v->array()) {
      std::optional<double> x = item.as_double();
      if (!x) return wrong_type(f, "tokenizer.ggml.scores", "an array of numbers");
      d.scores.push_back(static_cast<float>(*x));
    }
  }
  if (const gguf::Value* v = f.find("tokenizer.ggml.token_type")) {
    if (!v->is_array()) return wrong_type(f, "tokenizer.ggml.token_type", "an array of integers");
    d.token_types.reserve(v->array().size());
    for (const gguf::Value& item : v->array()) {
      std::optional<int64_t> x = item.as_int();
      if (!x) return wrong_type(f, "tokenizer.ggml.token_type", "an array of integers");
      d.token_types.push_back(static_cast<int32_t>(std::clamp<int64_t>(*x, -1, 1 << 20)));
    }
  }

  LOUPE_TRY(read_id(f, "tokenizer.ggml.bos_token_id", d.bos));
  LOUPE_TRY(read_id(f, "tokenizer.ggml.eos_token_id", d.eos));
  LOUPE_TRY(read_id(f, "tokenizer.ggml.eot_token_id", d.eot));
  LOUPE_TRY(read_id(f, "tokenizer.ggml.eom_token_id", d.eom));
  LOUPE_TRY(read_id(f, "tokenizer.ggml.unknown_token_id", d.unknown));
  LOUPE_TRY(read_id(f, "tokenizer.ggml.seperator_token_id", d.separator));
  LOUPE_TRY(read_id(f, "tokenizer.ggml.padding_token_id", d.padding));
  LOUPE_TRY(read_id(f, "tokenizer.ggml.mask_token_id", d.mask));
  LOUPE_TRY(read_id(f, "tokenizer.ggml.fim_pre_token_id", d.fim_pre));
  LOUPE_TRY(read_id(f, "tokenizer.ggml.fim_suf_token_id", d.fim_suf));
  LOUPE_TRY(read_id(f, "tokenizer.ggml.fim_mid_token_id", d.fim_mid));
  LOUPE_TRY(read_id(f, "tokenizer.ggml.fim_pad_token_id", d.fim_pad));
  LOUPE_TRY(read_id(f, "tokenizer.ggml.fim_rep_token_id", d.fim_rep));
  LOUPE_TRY(read_id(f, "tokenizer.ggml.fim_sep_token_id", d.fim_sep));
  // Deprecated spellings, read after (and so over) the current ones, as llama.cpp does.
  LOUPE_TRY(read_id(f, "tokenizer.ggml.prefix_token_id", d.fim_pre));
  LOUPE_TRY(read_id(f, "tokenizer.ggml.suffix_token_id", d.fim_suf));
  LOUPE_TRY(read_id(f, "tokenizer.ggml.middle_token_id", d.fim_mid));

  LOUPE_TRY(read_flag(f, "tokenizer.ggml.add_bos_token", d.add_bos));
  LOUPE_TRY(read_flag(f, "tokenizer.ggml.add_eos_token", d.add_eos));
  LOUPE_TRY(read_flag(f, "tokenizer.ggml.add_sep_token", d.add_sep));
  LOUPE_TRY(read_flag(f, "tokenizer.ggml.add_space_prefix", d.add_space_prefix));
  LOUPE_TRY(read_flag(f, "tokenizer.ggml.remove_extra_whitespaces", d.remove_extra_whitespaces));
  LOUPE_TRY(read_flag(f, "tokenizer.ggml.normalizer.lowercase", d.normalizer_lowercase));
  LOUPE_TRY(read_flag(f, "tokenizer.ggml.normalizer.strip_accents", d.normalizer_strip_accents));
  return d;
}

Expected<tokenizer::Tokenizer> load_tokenizer(const gguf::File& f) {
  LOUPE_ASSIGN_OR_RETURN(tokenizer::VocabData data, load_vocab(f));
  auto tok = tokenizer::Tokenizer::create(std::move(data));
  if (!tok) return tok.status().with_context(f.path());
  return tok;
}

}  // namespace loupe::model
