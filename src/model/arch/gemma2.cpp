// Gemma 2: embeddings scaled by sqrt(n_embd), NEOX rope, q scaled by 1/sqrt(head_dim)
// (query_pre_attn_scalar = head_dim for 2B/9B), attention logit softcap, post-norms
// around attention and FFN, GeGLU, final logit softcap, sliding window on even layers.
#include "model/arch/common.h"

namespace loupe::model::arch {
namespace {

constexpr ArchSpec kSpec{
    .name = "gemma2",
    .rope_style = kernels::RopeStyle::kNeox,
    .activation = Activation::kGelu,
    .attn_scale = AttnScale::kQuery,
    .embd_scale = true,
    .post_block_norms = true,
};

Status bind(Binder& b, Model& m) {
  bind_globals(b, m);
  const Hparams& hp = m.hp;
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    bind_attention(b, m, il, {});
    bind_dense_ffn(b, m, il);
    LayerWeights& l = m.layers[il];
    l.attn_post_norm = b.req(blk(il, "post_attention_norm.weight"), {hp.n_embd});
    l.ffn_post_norm = b.req(blk(il, "post_ffw_norm.weight"), {hp.n_embd});
  }
  return b.status();
}

}  // namespace

extern const Family kGemma2Family{&kSpec, &bind};

}  // namespace loupe::model::arch
