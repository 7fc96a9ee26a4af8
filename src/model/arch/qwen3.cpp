// Qwen3 dense: qwen2 without biases, with per-head RMS norms of q and k before rope.
#include "model/arch/common.h"

namespace loupe::model::arch {
namespace {

constexpr ArchSpec kSpec{
    .name = "qwen3",
    .rope_style = kernels::RopeStyle::kNeox,
};

Status bind(Binder& b, Model& m) {
  bind_globals(b, m);
  for (int64_t il = 0; il < m.hp.n_layer; ++il) {
    bind_attention(b, m, il, {.qk_norm = true});
    bind_dense_ffn(b, m, il);
  }
  return b.status();
}

}  // namespace

extern const Family kQwen3Family{&kSpec, &bind};

}  // namespace loupe::model::arch
