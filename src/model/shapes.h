// Model shapes for `loupe synth`: the hyper-parameters of real models (a named catalog, or
// a JSON config) expanded into exactly the GGUF metadata and tensor list that llama.cpp
// expects for the architecture. llama.cpp rejects files with missing or extra tensors or
// wrong shapes, so the tensor tables here mirror its loaders (src/models/<arch>.cpp) and
// were checked against files llama.cpp loads (testdata ref/ and ref2026/ manifests).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gguf/value.h"

namespace loupe::model {

// How a synthetic tensor is filled. Values are drawn per element; see synth.cpp.
enum class InitKind {
  kNormal,      // N(0, a): weight matrices, biases
  kOnesJitter,  // 1 + N(0, a): norm weights (stored with any +1 offset already applied)
  kUniform,     // U(a, b): positive scales, dt bias; negative range for ssm_a
  kValues,      // the explicit `values` (rope frequency factors)
  kCount
};

struct TensorInit {
  InitKind kind = InitKind::kNormal;
  float a = 0.02f;
  float b = 0.0f;
};

struct TensorSpec {
  std::string name;
  std::vector<int64_t> ne;    // ggml order: ne[0] is the contiguous (input) dimension
  TensorInit init;
  std::vector<float> values;  // kValues only; size == n_elements()

  int64_t n_elements() const;
};

// Hyper-parameters of one model, the union over the supported families. Zero means
// "not used by this model" (or "derive the default", documented per field).
//
// `--config FILE.json` accepts exactly these field names (unknown ones are an error):
//   arch (required: llama | qwen3 | qwen35 | qwen35moe | gemma4 | gpt-oss), name,
//   n_vocab (32000), n_ctx (4096), n_embd, n_layer, n_ff, n_head, n_head_kv (= n_head),
//   head_dim (= n_embd / n_head), n_rot (= head_dim), rms_eps (1e-6), rope_base (10000),
//   tied_embeddings (false),
//   rope_scaling ("none" | "llama3" | "yarn"), rope_scaling_factor, rope_orig_ctx,
//   rope_low_freq_factor (1), rope_high_freq_factor (4),
//   n_expert, n_expert_used, n_ff_exp, n_ff_shexp, moe_layers (default: all layers),
//   full_attention_interval (4), ssm_conv_kernel (4), ssm_head_dim, ssm_n_k_heads,
//   ssm_n_v_heads, rope_sections ([n_rot/8·3, n_rot/8·3, n_rot/8·2, 0]-style, see below),
//   n_swa, swa_period, head_dim_swa, n_head_kv_swa, n_rot_swa, rope_base_swa,
//   rope_partial_factor (1), k_eq_v (false), n_kv_shared, n_embd_per_layer,
//   double_wide_mlp (false), final_logit_softcap.
// Which fields an arch requires is checked by validate(); the rest keep their defaults.
struct ShapeParams {
  std::string arch;
  std::string name;  // general.name
  int64_t n_vocab = 32000;
  int64_t n_ctx = 4096;  // context_length
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_ff = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;  // gemma4: of the global (full-attention) layers
  int64_t head_dim = 0;   // gemma4: of the global layers
  int64_t n_rot = 0;      // rope.dimension_count
  double rms_eps = 1e-6;
  double rope_base = 10000.0;
  bool tied_embeddings = false;

  // Rope scaling. "llama3" writes the rope_freqs.weight factors (Llama 3.1/3.2 long context,
  // as convert_hf_to_gguf.py does); "yarn" writes rope.scaling.* keys (gpt-oss).
  std::string rope_scaling = "none";
  double rope_scaling_factor = 0.0;
  int64_t rope_orig_ctx = 0;
  double rope_low_freq_factor = 1.0;
  double rope_high_freq_factor = 4.0;

  // Mixture of experts.
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;
  int64_t n_ff_exp = 0;
  int64_t n_ff_shexp = 0;          // qwen35moe shared expert
  std::vector<int64_t> moe_layers;  // gemma4: MoE blocks only on these layers (empty: all)

  // Gated DeltaNet (qwen35/qwen35moe): layer il is recurrent iff (il+1) % interval != 0.
  int64_t full_attention_interval = 4;
  int64_t ssm_conv_kernel = 4;
  int64_t ssm_head_dim = 0;  // = linear key head dim = linear value head dim
  int64_t ssm_n_k_heads = 0;
  int64_t ssm_n_v_heads = 0;
  std::vector<int64_t> rope_sections;  // M-RoPE sections, 4 entries

  // Sliding-window attention: layer il slides iff (il+1) % swa_period != 0.
  int64_t n_swa = 0;
  int64_t swa_period = 0;
  int64_t head_dim_swa = 0;
  int64_t n_head_kv_swa = 0;
  int64_t n_rot_swa = 0;
  double rope_base_swa = 0.0;
  // gemma4 "proportional" rope on global layers: only this fraction of the dimension
  // pairs rotates (rope_freqs.weight holds 1 for them and 1e30 for the rest).
  double rope_partial_factor = 1.0;
  bool k_eq_v = false;           // gemma4: global layers have no attn_v (V = K)
  int64_t n_kv_shared = 0;       // gemma4: the last n layers reuse earlier layers' KV
  int64_t n_embd_per_layer = 0;  // gemma4 per-layer embeddings (E2B/E4B); 0 = none
  bool double_wide_mlp = false;  // gemma4: KV-shared layers use 2·n_ff
  double final_logit_softcap = 0.0;

  bool is_swa(int64_t il) const { return swa_period > 0 && (il + 1) % swa_period != 0; }
  bool is_recurrent(int64_t il) const;
  bool is_moe_layer(int64_t il) const;
  bool has_kv(int64_t il) const { return il < n_layer - n_kv_shared; }
  int64_t layer_n_ff(int64_t il) const;
  int64_t layer_head_dim(int64_t il) const;
  int64_t layer_n_head_kv(int64_t il) const;
};

// A model ready to synthesize: metadata (without tokenizer.* and general.file_type), the
// exact tensor list in file order, and the vocabulary size its embeddings were sized for.
struct SynthSpec {
  std::string arch;
  ShapeParams params;
  std::vector<gguf::KeyValue> metadata;
  std::vector<TensorSpec> tensors;
  int64_t n_vocab = 0;

  int64_t n_params() const;
};

struct CatalogEntry {
  std::string_view name;       // `--shape` value
  std::string_view reference;  // where the numbers come from
  ShapeParams params;
};

// The named shapes, in display order.
const std::vector<CatalogEntry>& shape_catalog();
// Looks a shape up by name; the error lists the known names.
Expected<ShapeParams> find_shape(std::string_view name);
// Parses a JSON config (fields above). `origin` names the source in error messages.
Expected<ShapeParams> shape_from_json(std::string_view json_text, const std::string& origin);
Expected<ShapeParams> shape_from_json_file(const std::string& path);

// Checks that the fields the arch needs are present and consistent.
Status validate(const ShapeParams& params);
// Expands hyper-parameters into metadata and tensors (validates first).
Expected<SynthSpec> build_spec(const ShapeParams& params);

}  // namespace loupe::model
