// Qwen3.5 / Qwen3.6 hybrids: Gated DeltaNet layers (linear attention with a causal
// depthwise conv and a per-head delta-rule state) interleaved with full attention layers
// whose q projection also yields a sigmoid output gate; partial rotary (IMROPE, which for
// text is NEOX over rope.dimension_count dims). The FFN norm is stored as
// post_attention_norm. qwen35moe replaces the dense FFN by routed experts with fused
// gate/up plus a sigmoid-gated shared expert.
#include "model/arch/common.h"

namespace loupe::model::arch {
namespace {

constexpr ArchSpec kDense{
    .name = "qwen35",
    .rope_style = kernels::RopeStyle::kNeox,
    .gated_attention = true,
};

constexpr ArchSpec kMoe{
    .name = "qwen35moe",
    .rope_style = kernels::RopeStyle::kNeox,
    .expert_weights_norm = true,
    .gated_attention = true,
};

void bind_mixer(Binder& b, Model& m, int64_t il) {
  const Hparams& hp = m.hp;
  LayerWeights& l = m.layers[il];
  const int64_t e = hp.n_embd;
  l.attn_norm = b.req(blk(il, "attn_norm.weight"), {e});
  if (hp.layer_kind[il] != LayerKind::kRecurrent) {
    const int64_t dk = hp.head_dim_k;
    l.wq = b.req(blk(il, "attn_q.weight"), {e, 2 * hp.n_head[il] * dk});
    l.wk = b.req(blk(il, "attn_k.weight"), {e, hp.n_head_kv[il] * dk});
    l.wv = b.req(blk(il, "attn_v.weight"), {e, hp.n_head_kv[il] * hp.head_dim_v});
    l.q_norm = b.req(blk(il, "attn_q_norm.weight"), {dk});
    l.k_norm = b.req(blk(il, "attn_k_norm.weight"), {dk});
    l.wo = b.req(blk(il, "attn_output.weight"), {hp.n_head[il] * hp.head_dim_v, e});
    return;
  }
  const int64_t n_v = hp.ssm_time_step_rank;
  const int64_t channels = hp.ssm_inner_size + 2 * hp.ssm_group_count * hp.ssm_state_size;
  l.ssm_in = b.req(blk(il, "attn_qkv.weight"), {e, channels});
  l.ssm_z = b.req(blk(il, "attn_gate.weight"), {e, hp.ssm_inner_size});
  l.ssm_conv1d = b.req(blk(il, "ssm_conv1d.weight"), {hp.ssm_conv_kernel, channels});
  l.ssm_beta = b.req(blk(il, "ssm_beta.weight"), {e, n_v});
  l.ssm_alpha = b.req(blk(il, "ssm_alpha.weight"), {e, n_v});
  l.ssm_dt_bias = b.req(blk(il, "ssm_dt.bias"), {n_v});
  l.ssm_a = b.req(blk(il, "ssm_a"), {n_v});
  l.ssm_norm = b.req(blk(il, "ssm_norm.weight"), {hp.ssm_inner_size / n_v});
  l.ssm_out = b.req(blk(il, "ssm_out.weight"), {hp.ssm_inner_size, e});
}

Status check_shapes(const Binder& b, const Hparams& hp) {
  if (hp.ssm_time_step_rank <= 0 || hp.ssm_group_count <= 0 || hp.ssm_state_size <= 0 ||
      hp.ssm_conv_kernel <= 0 || hp.ssm_inner_size % hp.ssm_time_step_rank != 0 ||
      hp.ssm_time_step_rank % hp.ssm_group_count != 0)
    return make_error(
        ErrorCode::kCorrupt,
        "{}: ssm.* keys (conv_kernel {}, state_size {}, group_count {}, time_step_rank {}, "
        "inner_size {}) do not describe a Gated DeltaNet",
        b.file().path(), hp.ssm_conv_kernel, hp.ssm_state_size, hp.ssm_group_count,
        hp.ssm_time_step_rank, hp.ssm_inner_size);
  if (hp.ssm_inner_size / hp.ssm_time_step_rank != hp.ssm_state_size)
    return make_error(ErrorCode::kUnsupported, "{}: DeltaNet value head dim {} != key head dim {}",
                      b.file().path(), hp.ssm_inner_size / hp.ssm_time_step_rank,
                      hp.ssm_state_size);
  return Status::ok_status();
}

Status bind_dense(Binder& b, Model& m) {
  LOUPE_TRY(check_shapes(b, m.hp));
  bind_globals(b, m);
  const Hparams& hp = m.hp;
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    bind_mixer(b, m, il);
    LayerWeights& l = m.layers[il];
    l.ffn_norm = b.req(blk(il, "post_attention_norm.weight"), {hp.n_embd});
    l.ffn_gate = b.req(blk(il, "ffn_gate.weight"), {hp.n_embd, hp.n_ff[il]});
    l.ffn_up = b.req(blk(il, "ffn_up.weight"), {hp.n_embd, hp.n_ff[il]});
    l.ffn_down = b.req(blk(il, "ffn_down.weight"), {hp.n_ff[il], hp.n_embd});
  }
  return b.status();
}

Status bind_moe(Binder& b, Model& m) {
  LOUPE_TRY(check_shapes(b, m.hp));
  bind_globals(b, m);
  const Hparams& hp = m.hp;
  const int64_t e = hp.n_embd;
  const int64_t ff = hp.n_ff_expert;
  const int64_t ne = hp.n_expert;
  const int64_t ff_sh = hp.n_ff_shared_expert > 0 ? hp.n_ff_shared_expert : ff;
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    bind_mixer(b, m, il);
    LayerWeights& l = m.layers[il];
    l.ffn_norm = b.req(blk(il, "post_attention_norm.weight"), {e});
    l.gate_inp = b.req(blk(il, "ffn_gate_inp.weight"), {e, ne});
    l.gate_up_exps = b.req(blk(il, "ffn_gate_up_exps.weight"), {e, 2 * ff, ne});
    l.down_exps = b.req(blk(il, "ffn_down_exps.weight"), {ff, e, ne});
    l.gate_inp_shexp = b.req(blk(il, "ffn_gate_inp_shexp.weight"), {e});
    l.gate_shexp = b.req(blk(il, "ffn_gate_shexp.weight"), {e, ff_sh});
    l.up_shexp = b.req(blk(il, "ffn_up_shexp.weight"), {e, ff_sh});
    l.down_shexp = b.req(blk(il, "ffn_down_shexp.weight"), {ff_sh, e});
  }
  return b.status();
}

}  // namespace

extern const Family kQwen35Family{&kDense, &bind_dense};
extern const Family kQwen35MoeFamily{&kMoe, &bind_moe};

}  // namespace loupe::model::arch
