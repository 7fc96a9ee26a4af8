// Gemma 3: gemma2's block with per-head q/k norms instead of the attention softcap;
// sliding layers use rope.freq_base_swa without rope scaling, global ones the scaled rope.
#include "model/arch/common.h"

namespace loupe::model::arch {
namespace {

constexpr ArchSpec kSpec{
    .name = "gemma3",
    .rope_style = kernels::RopeStyle::kNeox,
    .activation = Activation::kGelu,
    .attn_scale = AttnScale::kQuery,
    .embd_scale = true,
    .post_block_norms = true,
    .swa_rope_unscaled = true,
};

Status bind(Binder& b, Model& m) {
  bind_globals(b, m);
  const Hparams& hp = m.hp;
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    bind_attention(b, m, il, {.qk_norm = true});
    bind_dense_ffn(b, m, il);
    LayerWeights& l = m.layers[il];
    l.attn_post_norm = b.req(blk(il, "post_attention_norm.weight"), {hp.n_embd});
    l.ffn_post_norm = b.req(blk(il, "post_ffw_norm.weight"), {hp.n_embd});
  }
  return b.status();
}

}  // namespace

extern const Family kGemma3Family{&kSpec, &bind};

}  // namespace loupe::model::arch
