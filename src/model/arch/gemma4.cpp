// Gemma 4: gemma3's sandwich norms and GeGLU with per-layer choices llama.cpp makes from
// the tensors present: sliding (small head dim, full rope) vs global layers (large head
// dim, "proportional" rope through rope_freqs), K/V shared from an earlier layer at the
// end of the stack, K reused as V when attn_v is absent, a weightless V norm, attention
// scale 1, a MoE block beside the dense FFN (scaled router input, per-expert output
// scales), per-layer token embeddings gated into every layer, a per-layer output scale,
// and a final logit softcap.
#include "model/arch/common.h"

namespace loupe::model::arch {
namespace {

constexpr ArchSpec kSpec{
    .name = "gemma4",
    .rope_style = kernels::RopeStyle::kNeox,
    .activation = Activation::kGelu,
    .attn_scale = AttnScale::kNone,
    .embd_scale = true,
    .post_block_norms = true,
    .expert_weights_norm = true,
    .v_norm = true,
};

Status bind(Binder& b, Model& m) {
  bind_globals(b, m);
  const Hparams& hp = m.hp;
  const int64_t e = hp.n_embd;
  const int64_t n_pl = b.file().get_int_or(hp.arch + ".embedding_length_per_layer_input", 0);
  if (n_pl > 0) {
    m.per_layer_tok_embd = b.req("per_layer_token_embd.weight", {n_pl * hp.n_layer, hp.n_vocab});
    m.per_layer_model_proj = b.req("per_layer_model_proj.weight", {e, n_pl * hp.n_layer});
    m.per_layer_proj_norm = b.req("per_layer_proj_norm.weight", {n_pl});
  }
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    LayerWeights& l = m.layers[il];
    const bool swa = hp.layer_kind[il] == LayerKind::kSlidingAttention;
    const int64_t hd = swa ? hp.head_dim_k_swa : hp.head_dim_k;
    const int64_t n_head = hp.n_head[il];
    l.attn_norm = b.req(blk(il, "attn_norm.weight"), {e});
    l.wq = b.req(blk(il, "attn_q.weight"), {e, n_head * hd});
    l.q_norm = b.req(blk(il, "attn_q_norm.weight"), {hd});
    if (!hp.kv_shared[il]) {
      l.wk = b.req(blk(il, "attn_k.weight"), {e, hp.n_head_kv[il] * hd});
      l.wv = b.opt(blk(il, "attn_v.weight"), {e, hp.n_head_kv[il] * hd});
      l.k_norm = b.req(blk(il, "attn_k_norm.weight"), {hd});
    }
    l.wo = b.req(blk(il, "attn_output.weight"), {n_head * hd, e});
    l.attn_post_norm = b.req(blk(il, "post_attention_norm.weight"), {e});
    bind_dense_ffn(b, m, il);
    l.ffn_post_norm = b.req(blk(il, "post_ffw_norm.weight"), {e});
    if (b.file().find_tensor(blk(il, "ffn_gate_inp.weight")) != nullptr) {
      const int64_t ff = hp.n_ff_expert;
      const int64_t ne = hp.n_expert;
      l.gate_inp = b.req(blk(il, "ffn_gate_inp.weight"), {e, ne});
      l.gate_inp_scale = b.req(blk(il, "ffn_gate_inp.scale"), {e});
      l.gate_up_exps = b.req(blk(il, "ffn_gate_up_exps.weight"), {e, 2 * ff, ne});
      l.down_exps = b.req(blk(il, "ffn_down_exps.weight"), {ff, e, ne});
      l.down_exps_scale = b.opt(blk(il, "ffn_down_exps.scale"), {ne});
      l.ffn_pre_norm_2 = b.req(blk(il, "pre_ffw_norm_2.weight"), {e});
      l.ffn_post_norm_1 = b.req(blk(il, "post_ffw_norm_1.weight"), {e});
      l.ffn_post_norm_2 = b.req(blk(il, "post_ffw_norm_2.weight"), {e});
    }
    if (n_pl > 0) {
      l.pl_inp_gate = b.req(blk(il, "inp_gate.weight"), {e, n_pl});
      l.pl_proj = b.req(blk(il, "proj.weight"), {n_pl, e});
      l.pl_post_norm = b.req(blk(il, "post_norm.weight"), {e});
    }
    l.out_scale = b.opt(blk(il, "layer_output_scale.weight"), {1});
  }
  return b.status();
}

}  // namespace

extern const Family kGemma4Family{&kSpec, &bind};

}  // namespace loupe::model::arch
