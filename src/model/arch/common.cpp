#include "model/arch/common.h"

namespace loupe::model::arch {

void bind_globals(Binder& b, Model& m) {
  const Hparams& hp = m.hp;
  m.tok_embd = b.req("token_embd.weight", {hp.n_embd, hp.n_vocab});
  m.output_norm = b.req("output_norm.weight", {hp.n_embd});
  m.output = b.opt("output.weight", {hp.n_embd, hp.n_vocab});
  if (!m.output) m.output = m.tok_embd;  // tied embeddings
  m.rope_freqs = b.opt("rope_freqs.weight", {hp.rope_dims / 2});
  m.layers.resize(static_cast<size_t>(hp.n_layer));
}

void bind_attention(Binder& b, Model& m, int64_t il, const AttnOptions& opt) {
  const Hparams& hp = m.hp;
  LayerWeights& l = m.layers[il];
  const int64_t e = hp.n_embd;
  const int64_t dk = hp.head_dim_k;
  const int64_t dv = hp.head_dim_v;
  const int64_t nq = hp.n_head[il] * dk;
  const int64_t nk = hp.n_head_kv[il] * dk;
  const int64_t nv = hp.n_head_kv[il] * dv;
  l.attn_norm = b.req(blk(il, "attn_norm.weight"), {e});
  if (b.file().find_tensor(blk(il, "attn_qkv.weight")) != nullptr) {
    l.wqkv = b.req(blk(il, "attn_qkv.weight"), {e, nq + nk + nv});
  } else {
    l.wq = b.req(blk(il, "attn_q.weight"), {e, nq});
    l.wk = b.req(blk(il, "attn_k.weight"), {e, nk});
    l.wv = b.req(blk(il, "attn_v.weight"), {e, nv});
  }
  if (opt.biases) {
    l.bq = b.opt(blk(il, "attn_q.bias"), {nq});
    l.bk = b.opt(blk(il, "attn_k.bias"), {nk});
    l.bv = b.opt(blk(il, "attn_v.bias"), {nv});
    l.bo = b.opt(blk(il, "attn_output.bias"), {e});
  }
  if (opt.qk_norm) {
    l.q_norm = b.req(blk(il, "attn_q_norm.weight"), {dk});
    l.k_norm = b.req(blk(il, "attn_k_norm.weight"), {dk});
  }
  l.wo = b.req(blk(il, "attn_output.weight"), {hp.n_head[il] * dv, e});
}

void bind_dense_ffn(Binder& b, Model& m, int64_t il) {
  const Hparams& hp = m.hp;
  LayerWeights& l = m.layers[il];
  l.ffn_norm = b.req(blk(il, "ffn_norm.weight"), {hp.n_embd});
  l.ffn_gate = b.req(blk(il, "ffn_gate.weight"), {hp.n_embd, hp.n_ff[il]});
  l.ffn_up = b.req(blk(il, "ffn_up.weight"), {hp.n_embd, hp.n_ff[il]});
  l.ffn_down = b.req(blk(il, "ffn_down.weight"), {hp.n_ff[il], hp.n_embd});
}

void bind_moe_ffn(Binder& b, Model& m, int64_t il) {
  const Hparams& hp = m.hp;
  LayerWeights& l = m.layers[il];
  // Mixtral-era files give the expert width only as feed_forward_length.
  const int64_t ff = hp.n_ff_expert > 0 ? hp.n_ff_expert : hp.n_ff[il];
  const int64_t ne = hp.n_expert;
  l.ffn_norm = b.req(blk(il, "ffn_norm.weight"), {hp.n_embd});
  l.gate_inp = b.req(blk(il, "ffn_gate_inp.weight"), {hp.n_embd, ne});
  l.gate_exps = b.req(blk(il, "ffn_gate_exps.weight"), {hp.n_embd, ff, ne});
  l.up_exps = b.req(blk(il, "ffn_up_exps.weight"), {hp.n_embd, ff, ne});
  l.down_exps = b.req(blk(il, "ffn_down_exps.weight"), {ff, hp.n_embd, ne});
}

}  // namespace loupe::model::arch
