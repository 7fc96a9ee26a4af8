// gpt-oss (OpenAI, 2025; llama.cpp's OPENAI_MOE): biased q/k/v/o projections, NEOX rope
// with YaRN, learned attention sinks per head, alternating sliding-window / full layers,
// and a MoE FFN on every layer: top-k of the biased router logits, softmax over those k,
// experts with biases and the clamped "SwiGLU-OAI" activation. The pre-FFN norm is stored
// as post_attention_norm.
#include "model/arch/common.h"

namespace loupe::model::arch {
namespace {

constexpr ArchSpec kSpec{
    .name = "gpt-oss",
    .rope_style = kernels::RopeStyle::kNeox,
    .activation = Activation::kSwigluOai,
    .gating = ExpertGating::kSoftmaxOfTopK,
};

Status bind(Binder& b, Model& m) {
  bind_globals(b, m);
  const Hparams& hp = m.hp;
  const int64_t e = hp.n_embd;
  const int64_t ff = hp.n_ff_expert;
  const int64_t ne = hp.n_expert;
  if (ff <= 0 || ne <= 0)
    return make_error(ErrorCode::kCorrupt,
                      "{}: gpt-oss needs expert_count and expert_feed_forward_length",
                      b.file().path());
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    bind_attention(b, m, il, {.biases = true});
    LayerWeights& l = m.layers[il];
    l.sinks = b.req(blk(il, "attn_sinks.weight"), {hp.n_head[il]});
    l.ffn_norm = b.req(blk(il, "post_attention_norm.weight"), {e});
    l.gate_inp = b.req(blk(il, "ffn_gate_inp.weight"), {e, ne});
    l.gate_inp_b = b.req(blk(il, "ffn_gate_inp.bias"), {ne});
    l.gate_exps = b.req(blk(il, "ffn_gate_exps.weight"), {e, ff, ne});
    l.up_exps = b.req(blk(il, "ffn_up_exps.weight"), {e, ff, ne});
    l.down_exps = b.req(blk(il, "ffn_down_exps.weight"), {ff, e, ne});
    l.gate_exps_b = b.req(blk(il, "ffn_gate_exps.bias"), {ff, ne});
    l.up_exps_b = b.req(blk(il, "ffn_up_exps.bias"), {ff, ne});
    l.down_exps_b = b.req(blk(il, "ffn_down_exps.bias"), {e, ne});
  }
  return b.status();
}

}  // namespace

extern const Family kGptOssFamily{&kSpec, &bind};

}  // namespace loupe::model::arch
