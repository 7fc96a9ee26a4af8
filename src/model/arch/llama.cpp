// Llama 2 / 3.x, Mistral, TinyLlama (Touvron et al. 2023): pre-norm RMSNorm, rotary
// embeddings on adjacent pairs, SwiGLU; Mixtral-style sparse MoE when expert_count > 0
// (softmax router, top-k, weights renormalized).
#include "model/arch/common.h"

namespace loupe::model::arch {
namespace {

constexpr ArchSpec kSpec{
    .name = "llama",
    .rope_style = kernels::RopeStyle::kNorm,
    .expert_weights_norm = true,
};

Status bind(Binder& b, Model& m) {
  bind_globals(b, m);
  for (int64_t il = 0; il < m.hp.n_layer; ++il) {
    bind_attention(b, m, il, {.biases = true});
    if (m.hp.n_expert > 0) {
      bind_moe_ffn(b, m, il);
    } else {
      bind_dense_ffn(b, m, il);
    }
  }
  return b.status();
}

}  // namespace

extern const Family kLlamaFamily{&kSpec, &bind};

}  // namespace loupe::model::arch
