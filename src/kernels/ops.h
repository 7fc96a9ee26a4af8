// Element-wise and row-wise operations of a transformer forward pass, in F32 with the
// numerics of llama.cpp's CPU backend (ggml-cpu ops.cpp / vec.h). No architecture
// names here: the model code picks the ops and their parameters.
#pragma once

#include <cstdint>

namespace loupe::kernels {

// y = x / sqrt(mean(x²) + eps) * w over one row of n (w may be null: no weight).
// The sum of squares is accumulated in double, as ggml does. x and y may alias.
void rms_norm(const float* x, const float* w, float eps, int64_t n, float* y);
// Classic layer norm: (x - mean) / sqrt(var + eps) * w + b (w, b may be null).
void layer_norm(const float* x, const float* w, const float* b, float eps, int64_t n, float* y);
// x / max(||x||, eps) (ggml_l2_norm).
void l2_norm(const float* x, float eps, int64_t n, float* y);

enum class RopeStyle {
  kNorm,  // rotate adjacent pairs (2i, 2i+1)
  kNeox,  // rotate (i, i + n_dims/2)
  kCount
};

struct RopeParams {
  RopeStyle style = RopeStyle::kNorm;
  int n_dims = 0;  // rotated dimensions from the start of each head
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;   // 1 / linear scaling factor
  float ext_factor = 0.0f;   // YaRN extrapolation mix (1 when YaRN is on)
  float attn_factor = 1.0f;  // multiplies cos and sin
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
  int n_ctx_orig = 0;
  const float* freq_factors = nullptr;  // [n_dims/2] divisors of θ (rope_freqs), or null
};

// Rotates n_heads heads of head_dim values (contiguous) at position pos, in place.
// θ_i is built by repeated F32 multiplication as ggml's rope cache does.
void rope(const RopeParams& p, int64_t pos, float* x, int64_t n_heads, int64_t head_dim);

// In-place softmax of one row: exp(x - max) summed in double, scaled by 1/sum.
void softmax(float* x, int64_t n);

float silu(float x);
// GELU (tanh approximation) through ggml's F16 table: the input rounded to F16 and the
// table's F16 output; x <= -10 gives 0 and x >= 10 gives x.
float gelu(float x);
float sigmoid(float x);
float softplus(float x);

// y = act(g) * u element-wise (SwiGLU / GeGLU).
void swiglu(const float* g, const float* u, int64_t n, float* y);
void geglu(const float* g, const float* u, int64_t n, float* y);

// x = cap * tanh(x / cap).
void softcap(float* x, int64_t n, float cap);

// F32 -> F16 -> F32 (ggml's rounding of activations for F16 operands).
float round_f16(float x);

}  // namespace loupe::kernels
