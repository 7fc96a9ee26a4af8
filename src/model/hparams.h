// Hyper-parameters: immutable facts read from a GGUF file's `<arch>.*` keys. Runtime
// choices (threads, context, batch) live elsewhere (RunParams).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/file.h"

namespace loupe::model {

enum class LayerKind {
  kFullAttention,     // causal attention over the whole context
  kSlidingAttention,  // attention over the last `sliding_window` positions
  kRecurrent,         // Gated DeltaNet / SSM layer: fixed-size state, no KV cache
  kCount
};

struct Hparams {
  std::string arch;  // general.architecture, verbatim
  int64_t n_ctx_train = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_vocab = 0;
  std::vector<int64_t> n_head;     // [n_layer]
  std::vector<int64_t> n_head_kv;  // [n_layer]
  std::vector<int64_t> n_ff;       // [n_layer]
  int64_t head_dim_k = 0;          // key_length (global layers)
  int64_t head_dim_v = 0;          // value_length (global layers)
  int64_t head_dim_k_swa = 0;      // key_length_swa, else head_dim_k
  int64_t head_dim_v_swa = 0;
  double norm_eps = 0;
  bool norm_is_rms = true;

  // RoPE
  int64_t rope_dims = 0;
  int64_t rope_dims_swa = 0;      // rope.dimension_count_swa, else rope_dims
  double rope_freq_base = 10000.0;
  double rope_freq_base_swa = 0;  // 0 = same as rope_freq_base
  std::string rope_scaling;       // "", "linear", "yarn", ...
  double rope_scaling_factor = 0;
  int64_t rope_orig_ctx = 0;

  // Attention variants
  int64_t sliding_window = 0;
  std::vector<LayerKind> layer_kind;  // [n_layer]
  std::vector<bool> kv_shared;        // [n_layer]: layer reuses an earlier layer's KV
  double attn_softcap = 0;
  double final_softcap = 0;

  // Mixture of experts
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;
  int64_t n_ff_expert = 0;
  int64_t n_ff_shared_expert = 0;

  // Recurrent (SSM / Gated DeltaNet) state sizes
  int64_t ssm_conv_kernel = 0;
  int64_t ssm_state_size = 0;
  int64_t ssm_group_count = 0;
  int64_t ssm_time_step_rank = 0;
  int64_t ssm_inner_size = 0;

  int64_t n_params = 0;  // elements of all tensors
};

// Reads the hyper-parameters; missing required keys give an error naming the key.
Expected<Hparams> read_hparams(const gguf::File& file);

struct MemoryEstimate {
  uint64_t weights = 0;        // tensor bytes as stored (mmap'd)
  uint64_t kv_cache = 0;       // K and V for every attention layer at n_ctx
  uint64_t recurrent_state = 0;
  uint64_t compute = 0;        // activations, scores and logits for one batch
  uint64_t total() const { return weights + kv_cache + recurrent_state + compute; }
};

// Memory to run at context n_ctx with batch n_batch; KV cache element size in bytes
// (2 for F16, the default; 4 for F32).
MemoryEstimate estimate_memory(const Hparams& hp, uint64_t weight_bytes, int64_t n_ctx,
                               int64_t n_batch = 512, double kv_bytes_per_elem = 2.0);

const char* layer_kind_name(LayerKind kind);

}  // namespace loupe::model
