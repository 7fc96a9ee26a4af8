// Binding helpers shared by the family files: the tensor names and shapes that most
// transformer families have in common.
#pragma once

#include <string>

#include "model/arch.h"

namespace loupe::model::arch {

inline std::string blk(int64_t il, const char* name) {
  return fmt::format("blk.{}.{}", il, name);
}

// token_embd, output_norm and output (tied to token_embd when absent).
void bind_globals(Binder& b, Model& m);

struct AttnOptions {
  bool biases = false;   // q/k/v biases (optional tensors, bound if present)
  bool qk_norm = false;  // per-head q/k RMS norms (required)
};
// attn_norm, attn_q/k/v (or fused attn_qkv), attn_output.
void bind_attention(Binder& b, Model& m, int64_t il, const AttnOptions& opt);
// ffn_norm, ffn_gate, ffn_up, ffn_down.
void bind_dense_ffn(Binder& b, Model& m, int64_t il);
// ffn_norm, router and the three expert tensors.
void bind_moe_ffn(Binder& b, Model& m, int64_t il);

}  // namespace loupe::model::arch
