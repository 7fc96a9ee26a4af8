// Phi-3 / Phi-4-mini: fused attn_qkv, fused ffn_up producing [gate | up], NEOX rope,
// q scaled by 1/sqrt(head_dim) after rope, sliding-window attention when the file says so.
#include "model/arch/common.h"

namespace loupe::model::arch {
namespace {

constexpr ArchSpec kSpec{
    .name = "phi3",
    .rope_style = kernels::RopeStyle::kNeox,
    .attn_scale = AttnScale::kQuery,
};

Status bind(Binder& b, Model& m) {
  bind_globals(b, m);
  const Hparams& hp = m.hp;
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    bind_attention(b, m, il, {.biases = true});
    LayerWeights& l = m.layers[il];
    l.ffn_norm = b.req(blk(il, "ffn_norm.weight"), {hp.n_embd});
    l.ffn_up = b.req(blk(il, "ffn_up.weight"), {hp.n_embd, 2 * hp.n_ff[il]});
    l.ffn_down = b.req(blk(il, "ffn_down.weight"), {hp.n_ff[il], hp.n_embd});
  }
  return b.status();
}

}  // namespace

extern const Family kPhi3Family{&kSpec, &bind};

}  // namespace loupe::model::arch
