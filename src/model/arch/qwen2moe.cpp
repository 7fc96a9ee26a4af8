// Qwen1.5-MoE / Qwen2-MoE: qwen2 attention; softmax router over all experts, top-k taken
// without renormalization, plus a shared expert scaled by sigmoid(ffn_gate_inp_shexp·x).
#include "model/arch/common.h"

namespace loupe::model::arch {
namespace {

constexpr ArchSpec kSpec{
    .name = "qwen2moe",
    .rope_style = kernels::RopeStyle::kNeox,
    .expert_weights_norm = false,
};

Status bind(Binder& b, Model& m) {
  bind_globals(b, m);
  const Hparams& hp = m.hp;
  const int64_t ff_shared = hp.n_ff_shared_expert > 0 ? hp.n_ff_shared_expert : hp.n_ff_expert;
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    bind_attention(b, m, il, {.biases = true});
    bind_moe_ffn(b, m, il);
    LayerWeights& l = m.layers[il];
    l.gate_inp_shexp = b.req(blk(il, "ffn_gate_inp_shexp.weight"), {hp.n_embd});
    l.gate_shexp = b.req(blk(il, "ffn_gate_shexp.weight"), {hp.n_embd, ff_shared});
    l.up_shexp = b.req(blk(il, "ffn_up_shexp.weight"), {hp.n_embd, ff_shared});
    l.down_shexp = b.req(blk(il, "ffn_down_shexp.weight"), {ff_shared, hp.n_embd});
  }
  return b.status();
}

}  // namespace

extern const Family kQwen2MoeFamily{&kSpec, &bind};

}  // namespace loupe::model::arch
