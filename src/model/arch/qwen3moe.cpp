// Qwen3-MoE: qwen3 attention; softmax router, top-k, weights renormalized
// (norm_topk_prob), no shared expert.
#include "model/arch/common.h"

namespace loupe::model::arch {
namespace {

constexpr ArchSpec kSpec{
    .name = "qwen3moe",
    .rope_style = kernels::RopeStyle::kNeox,
    .expert_weights_norm = true,
};

Status bind(Binder& b, Model& m) {
  bind_globals(b, m);
  for (int64_t il = 0; il < m.hp.n_layer; ++il) {
    bind_attention(b, m, il, {.qk_norm = true});
    bind_moe_ffn(b, m, il);
  }
  return b.status();
}

}  // namespace

extern const Family kQwen3MoeFamily{&kSpec, &bind};

}  // namespace loupe::model::arch
