#include "model/hparams.h"

#include <algorithm>

namespace loupe::model {
namespace {

// Reads `<arch>.<name>` as a per-layer vector: a scalar applies to every layer, an array
// must have one entry per layer.
Expected<std::vector<int64_t>> per_layer(const gguf::File& f, const std::string& key,
                                         int64_t n_layer, std::optional<int64_t> fallback) {
  const gguf::Value* v = f.find(key);
  if (v == nullptr) {
    if (!fallback) return make_error(ErrorCode::kNotFound, "{}: required key '{}' is missing", f.path(), key);
    return std::vector<int64_t>(static_cast<size_t>(n_layer), *fallback);
  }
  if (v->is_array()) {
    if (static_cast<int64_t>(v->array().size()) != n_layer)
      return make_error(ErrorCode::kCorrupt, "{}: '{}' has {} entries for {} layers", f.path(), key,
                        v->array().size(), n_layer);
    std::vector<int64_t> out;
    for (const gguf::Value& item : v->array()) {
      auto i = item.as_int();
      if (!i || *i < 0) return make_error(ErrorCode::kCorrupt, "{}: '{}' holds a non-count entry", f.path(), key);
      out.push_back(*i);
    }
    return out;
  }
  auto i = v->as_int();
  if (!i || *i < 0)
    return make_error(ErrorCode::kCorrupt, "{}: '{}' must be a non-negative integer, found {}",
                      f.path(), key, v->to_display());
  return std::vector<int64_t>(static_cast<size_t>(n_layer), *i);
}

}  // namespace

const char* layer_kind_name(LayerKind kind) {
  switch (kind) {
    case LayerKind::kFullAttention: return "attention";
    case LayerKind::kSlidingAttention: return "sliding-window attention";
    case LayerKind::kRecurrent: return "recurrent";
    case LayerKind::kCount: break;
  }
  return "?";
}

Expected<Hparams> read_hparams(const gguf::File& f) {
  Hparams hp;
  hp.arch = f.architecture();
  if (hp.arch.empty())
    return make_error(ErrorCode::kNotFound,
                      "{}: 'general.architecture' is missing: this is not a model file "
                      "(a vocab-only or adapter GGUF?)",
                      f.path());
  const std::string p = hp.arch + ".";
  auto get = [&](const std::string& k) { return f.get_int(p + k); };
  LOUPE_ASSIGN_OR_RETURN(hp.n_embd, get("embedding_length"));
  LOUPE_ASSIGN_OR_RETURN(hp.n_layer, get("block_count"));
  if (hp.n_embd <= 0 || hp.n_layer <= 0 || hp.n_layer > 100000)
    return make_error(ErrorCode::kCorrupt, "{}: implausible embedding_length {} / block_count {}",
                      f.path(), hp.n_embd, hp.n_layer);
  hp.n_ctx_train = f.get_int_or(p + "context_length", 0);
  LOUPE_ASSIGN_OR_RETURN(hp.n_head, per_layer(f, p + "attention.head_count", hp.n_layer, std::nullopt));
  LOUPE_ASSIGN_OR_RETURN(hp.n_head_kv, per_layer(f, p + "attention.head_count_kv", hp.n_layer, hp.n_head[0]));
  LOUPE_ASSIGN_OR_RETURN(hp.n_ff, per_layer(f, p + "feed_forward_length", hp.n_layer, int64_t{0}));
  int64_t n_head0 = std::max<int64_t>(1, *std::max_element(hp.n_head.begin(), hp.n_head.end()));
  hp.head_dim_k = f.get_int_or(p + "attention.key_length", hp.n_embd / n_head0);
  hp.head_dim_v = f.get_int_or(p + "attention.value_length", hp.head_dim_k);
  hp.head_dim_k_swa = f.get_int_or(p + "attention.key_length_swa", hp.head_dim_k);
  hp.head_dim_v_swa = f.get_int_or(p + "attention.value_length_swa", hp.head_dim_v);
  if (f.find(p + "attention.layer_norm_rms_epsilon")) {
    hp.norm_eps = f.get_float_or(p + "attention.layer_norm_rms_epsilon", 1e-5);
  } else if (f.find(p + "attention.layer_norm_epsilon")) {
    hp.norm_eps = f.get_float_or(p + "attention.layer_norm_epsilon", 1e-5);
    hp.norm_is_rms = false;
  }

  hp.rope_dims = f.get_int_or(p + "rope.dimension_count", hp.head_dim_k);
  hp.rope_dims_swa = f.get_int_or(p + "rope.dimension_count_swa", hp.rope_dims);
  hp.rope_freq_base = f.get_float_or(p + "rope.freq_base", 10000.0);
  hp.rope_freq_base_swa = f.get_float_or(p + "rope.freq_base_swa", 0.0);
  hp.rope_scaling = f.get_string_or(p + "rope.scaling.type", "");
  hp.rope_scaling_factor = f.get_float_or(p + "rope.scaling.factor", 0.0);
  hp.rope_orig_ctx = f.get_int_or(p + "rope.scaling.original_context_length", 0);

  hp.attn_softcap = f.get_float_or(p + "attn_logit_softcapping", 0.0);
  hp.final_softcap = f.get_float_or(p + "final_logit_softcapping", 0.0);
  hp.n_expert = f.get_int_or(p + "expert_count", 0);
  hp.n_expert_used = f.get_int_or(p + "expert_used_count", 0);
  hp.n_ff_expert = f.get_int_or(p + "expert_feed_forward_length", 0);
  hp.n_ff_shared_expert = f.get_int_or(p + "expert_shared_feed_forward_length", 0);
  hp.ssm_conv_kernel = f.get_int_or(p + "ssm.conv_kernel", 0);
  hp.ssm_state_size = f.get_int_or(p + "ssm.state_size", 0);
  hp.ssm_group_count = f.get_int_or(p + "ssm.group_count", 0);
  hp.ssm_time_step_rank = f.get_int_or(p + "ssm.time_step_rank", 0);
  hp.ssm_inner_size = f.get_int_or(p + "ssm.inner_size", 0);

  // Layer kinds. Sliding-window layouts follow llama.cpp's per-arch defaults when the
  // file carries no explicit pattern (gemma2 and gpt-oss: even layers; gemma3: 5 of 6).
  hp.sliding_window = f.get_int_or(p + "attention.sliding_window", 0);
  hp.layer_kind.assign(static_cast<size_t>(hp.n_layer), LayerKind::kFullAttention);
  if (hp.sliding_window > 0) {
    const gguf::Value* pattern = f.find(p + "attention.sliding_window_pattern");
    int64_t period = 0;
    if (hp.arch == "gemma2" || hp.arch == "gpt-oss") period = 2;
    if (hp.arch == "gemma3") period = 6;
    if (hp.arch == "phi3") period = 1;  // every layer slides
    if (pattern != nullptr && pattern->is_array()) {
      for (size_t i = 0; i < pattern->array().size() && i < hp.layer_kind.size(); ++i)
        if (pattern->array()[i].as_bool().value_or(false)) hp.layer_kind[i] = LayerKind::kSlidingAttention;
      period = 0;
    } else if (pattern != nullptr && pattern->as_int()) {
      period = *pattern->as_int();
    }
    for (int64_t il = 0; period > 0 && il < hp.n_layer; ++il)
      if (period == 1 || il % period < period - 1) hp.layer_kind[il] = LayerKind::kSlidingAttention;
  }
  int64_t interval = f.get_int_or(p + "full_attention_interval", 0);
  if (interval > 0 && hp.ssm_state_size > 0) {
    for (int64_t il = 0; il < hp.n_layer; ++il)
      if ((il + 1) % interval != 0) hp.layer_kind[il] = LayerKind::kRecurrent;
  }
  // Layers at the end may reuse an earlier layer's K/V (Gemma 3n / Gemma 4 edge models).
  hp.kv_shared.assign(static_cast<size_t>(hp.n_layer), false);
  int64_t n_shared = f.get_int_or(p + "attention.shared_kv_layers", 0);
  for (int64_t il = std::max<int64_t>(0, hp.n_layer - n_shared); il < hp.n_layer; ++il)
    hp.kv_shared[il] = true;

  if (const gguf::Value* tokens = f.find("tokenizer.ggml.tokens"); tokens && tokens->is_array())
    hp.n_vocab = static_cast<int64_t>(tokens->array().size());
  hp.n_vocab = f.get_int_or(p + "vocab_size", hp.n_vocab);
  if (hp.n_vocab == 0) {
    if (const gguf::TensorInfo* emb = f.find_tensor("token_embd.weight"); emb && emb->ne.size() >= 2)
      hp.n_vocab = emb->ne[1];
  }
  for (const gguf::TensorInfo& t : f.tensors()) hp.n_params += t.n_elements();
  return hp;
}

MemoryEstimate estimate_memory(const Hparams& hp, uint64_t weight_bytes, int64_t n_ctx,
                               int64_t n_batch, double kv_bytes_per_elem) {
  MemoryEstimate m;
  m.weights = weight_bytes;
  double kv = 0;
  int64_t max_kv_width = 0;
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    LayerKind kind = hp.layer_kind[il];
    if (kind == LayerKind::kRecurrent) {
      // Conv window of the projected channels + the per-head delta state, in F32.
      int64_t channels = hp.ssm_inner_size + 2 * hp.ssm_group_count * hp.ssm_state_size;
      double conv = static_cast<double>(std::max<int64_t>(0, hp.ssm_conv_kernel - 1)) * channels;
      double state = static_cast<double>(hp.ssm_time_step_rank) * hp.ssm_state_size *
                     (hp.ssm_inner_size / std::max<int64_t>(1, hp.ssm_time_step_rank));
      m.recurrent_state += static_cast<uint64_t>((conv + state) * 4);
      continue;
    }
    if (hp.kv_shared[il]) continue;
    bool swa = kind == LayerKind::kSlidingAttention;
    int64_t cells = swa ? std::min<int64_t>(n_ctx, hp.sliding_window + n_batch) : n_ctx;
    int64_t dk = swa ? hp.head_dim_k_swa : hp.head_dim_k;
    int64_t dv = swa ? hp.head_dim_v_swa : hp.head_dim_v;
    int64_t width = hp.n_head_kv[il] * (dk + dv);
    max_kv_width = std::max(max_kv_width, width);
    kv += static_cast<double>(cells) * width * kv_bytes_per_elem;
  }
  m.kv_cache = static_cast<uint64_t>(kv);
  // One batch of activations: the residual stream and a few temporaries of the widest
  // layer, attention scores of all heads against the context, logits for the batch.
  int64_t n_ff_max = std::max<int64_t>(hp.n_ff.empty() ? 0 : *std::max_element(hp.n_ff.begin(), hp.n_ff.end()),
                                       hp.n_ff_expert * std::max<int64_t>(1, hp.n_expert_used));
  int64_t n_head_max = hp.n_head.empty() ? 0 : *std::max_element(hp.n_head.begin(), hp.n_head.end());
  int64_t qkv = n_head_max * std::max(hp.head_dim_k, hp.head_dim_v) + max_kv_width;
  double per_token = 4.0 * (4 * hp.n_embd + 3 * n_ff_max + qkv + hp.n_vocab);
  double scores = 4.0 * n_head_max * static_cast<double>(std::min(n_ctx, n_batch)) * n_ctx;
  m.compute = static_cast<uint64_t>(per_token * std::min(n_ctx, n_batch) + scores);
  return m;
}

}  // namespace loupe::model
