// Qwen2 / Qwen2.5: the Llama block with q/k/v biases and NEOX-style rope.
#include "model/arch/common.h"

namespace loupe::model::arch {
namespace {

constexpr ArchSpec kSpec{
    .name = "qwen2",
    .rope_style = kernels::RopeStyle::kNeox,
};

Status bind(Binder& b, Model& m) {
  bind_globals(b, m);
  for (int64_t il = 0; il < m.hp.n_layer; ++il) {
    bind_attention(b, m, il, {.biases = true});
    bind_dense_ffn(b, m, il);
  }
  return b.status();
}

}  // namespace

extern const Family kQwen2Family{&kSpec, &bind};

}  // namespace loupe::model::arch
