// The architecture registry: what a family's forward pass looks like, as data. The
// runtime runs one decoder driven by an ArchSpec; each family file in model/arch/ holds
// its spec and binds its tensors, and nothing else.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gguf/file.h"
#include "kernels/ops.h"
#include "model/hparams.h"
#include "model/weights.h"

namespace loupe::model {

enum class Activation {
  kSilu,       // SwiGLU: silu(gate) * up
  kGelu,       // GeGLU with ggml's tanh-GELU table: gelu(gate) * up
  kSwigluOai,  // gpt-oss: clamp(g,7)·σ(1.702·g)·(clamp(u,±7)+1)
  kCount
};

// Where the attention scale 1/sqrt(head_dim) is applied.
enum class AttnScale {
  kSoftmax,  // inside the softmax (llama.cpp's kq_scale), the common case
  kQuery,    // q is scaled after rope and kq_scale is 1 (gemma2/3, phi3)
  kNone,     // no scale at all (gemma4: q/k norms keep q·k near unit scale)
  kCount
};

// How MoE router logits become expert weights.
enum class ExpertGating {
  kSoftmax,        // softmax over all experts, take the top k (optionally renormalized)
  kSoftmaxOfTopK,  // take the top k logits, softmax over those (gpt-oss)
  kCount
};

struct ArchSpec {
  std::string_view name;
  kernels::RopeStyle rope_style = kernels::RopeStyle::kNorm;
  Activation activation = Activation::kSilu;
  AttnScale attn_scale = AttnScale::kSoftmax;
  bool embd_scale = false;         // x = token_embd[t] · sqrt(n_embd) (gemma)
  bool post_block_norms = false;   // post_attention_norm / post_ffw_norm wrap each block (gemma2/3)
  bool swa_rope_unscaled = false;  // sliding layers use rope.freq_base_swa and no rope scaling
  ExpertGating gating = ExpertGating::kSoftmax;
  bool expert_weights_norm = false;  // renormalize the top-k weights to sum 1
  bool gated_attention = false;      // attn_q also yields a per-head output gate: out ⊙ σ(gate)
  bool v_norm = false;               // V gets a weightless per-head RMS norm (gemma4)
};

// Tensors of one layer; absent ones are empty. Shapes in ggml order.
struct LayerWeights {
  Weight attn_norm;       // [n_embd]
  Weight wq, wk, wv;      // [n_embd, n_head*dk], [n_embd, n_head_kv*dk], [n_embd, n_head_kv*dv]
  Weight wqkv;            // fused [n_embd, (n_head + 2 n_head_kv)*d] (phi3)
  Weight bq, bk, bv;      // biases (qwen2, gpt-oss)
  Weight q_norm, k_norm;  // [dk] per-head RMS norms (qwen3, gemma3)
  Weight wo, bo;          // [n_head*dv, n_embd]
  Weight attn_post_norm;  // [n_embd] gemma: norm of the attention output
  Weight sinks;           // [n_head] gpt-oss
  Weight ffn_norm;        // [n_embd]
  Weight ffn_gate, ffn_up,
      ffn_down;          // [n_embd, n_ff], [n_embd, n_ff | 2 n_ff fused], [n_ff, n_embd]
  Weight ffn_post_norm;  // [n_embd] gemma
  // Mixture of experts
  Weight gate_inp, gate_inp_b;                 // router [n_embd, n_expert] (+ bias)
  Weight gate_exps, up_exps;                   // [n_embd, n_ff_exp, n_expert]
  Weight gate_up_exps;                         // fused [n_embd, 2 n_ff_exp, n_expert]
  Weight down_exps;                            // [n_ff_exp, n_embd, n_expert]
  Weight gate_exps_b, up_exps_b, down_exps_b;  // [n_ff_exp | n_embd, n_expert]
  Weight gate_shexp, up_shexp, down_shexp;     // shared expert
  Weight gate_inp_shexp;                       // [n_embd]: sigmoid gate of the shared expert
  // Gated DeltaNet (recurrent layers); conv channels = q | k | v = 2·n_k·dk + n_v·dv
  Weight ssm_in;               // attn_qkv [n_embd, n_channels]
  Weight ssm_z;                // attn_gate [n_embd, n_v·dv]: output gate
  Weight ssm_conv1d;           // [n_kernel, n_channels]
  Weight ssm_beta, ssm_alpha;  // [n_embd, n_v]
  Weight ssm_dt_bias, ssm_a;   // [n_v]; ssm_a = -exp(A_log)
  Weight ssm_norm;             // [dv]
  Weight ssm_out;              // [n_v·dv, n_embd]
  // Gemma 4: MoE beside a dense FFN, per-layer embeddings, a per-layer output scale
  Weight gate_inp_scale;   // [n_embd] router input scale
  Weight down_exps_scale;  // [n_expert] per-expert output scale
  Weight ffn_pre_norm_2;   // [n_embd] expert input norm
  Weight ffn_post_norm_1;  // [n_embd] dense branch output norm
  Weight ffn_post_norm_2;  // [n_embd] expert branch output norm
  Weight pl_inp_gate;      // [n_embd, n_embd_per_layer]
  Weight pl_proj;          // [n_embd_per_layer, n_embd]
  Weight pl_post_norm;     // [n_embd]
  Weight out_scale;        // [1]
};

struct Model {
  std::unique_ptr<gguf::File> file;
  Hparams hp;
  const ArchSpec* spec = nullptr;
  Weight tok_embd;     // [n_embd, n_vocab]
  Weight output_norm;  // [n_embd]
  Weight output;       // [n_embd, n_vocab]; token_embd when tied
  Weight rope_freqs;   // [rope_dims/2] optional frequency divisors (full-attention layers)
  // Per-layer embeddings (Gemma 3n / Gemma 4 edge models)
  Weight per_layer_tok_embd;    // [n_embd_per_layer * n_layer, n_vocab]
  Weight per_layer_model_proj;  // [n_embd, n_embd_per_layer * n_layer]
  Weight per_layer_proj_norm;   // [n_embd_per_layer]
  std::vector<LayerWeights> layers;
  // Matrices repacked at load for the active ISA (declared last: unregistered before the
  // file is unmapped).
  kernels::PackedWeights packed;
};

// A family: its spec and how its tensors bind.
struct Family {
  const ArchSpec* spec;
  Status (*bind)(Binder& b, Model& m);
};

// The family for general.architecture, or nullptr.
const Family* find_family(std::string_view arch);
// Names of every supported architecture (for messages).
std::vector<std::string_view> family_names();

// Opens a GGUF file, reads its hyper-parameters and binds every weight.
Expected<std::unique_ptr<Model>> load_model(const std::string& path);

}  // namespace loupe::model
