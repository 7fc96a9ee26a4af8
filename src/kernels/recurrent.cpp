#include "kernels/recurrent.h"

#include <cmath>

namespace loupe::kernels {

void gated_delta_step(float* state, const float* q, const float* k, const float* v, float g,
                      float beta, int64_t s, float* out) {
  const float decay = std::exp(g);
  for (int64_t i = 0; i < s * s; ++i) state[i] *= decay;
  for (int64_t j = 0; j < s; ++j) {
    float* row = state + j * s;
    float sum = 0.0f;
    for (int64_t i = 0; i < s; ++i) sum += row[i] * k[i];
    const float delta = (v[j] - sum) * beta;
    for (int64_t i = 0; i < s; ++i) row[i] += k[i] * delta;
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(s));
  for (int64_t j = 0; j < s; ++j) {
    const float* row = state + j * s;
    float sum = 0.0f;
    for (int64_t i = 0; i < s; ++i) sum += row[i] * q[i];
    out[j] = sum * scale;
  }
}

void causal_conv1d(const float* window, const float* weight, int64_t n_kernel, int64_t n_channels,
                   float* out) {
  for (int64_t c = 0; c < n_channels; ++c) {
    float sum = 0.0f;
    for (int64_t j = 0; j < n_kernel; ++j)
      sum += window[j * n_channels + c] * weight[c * n_kernel + j];
    out[c] = sum;
  }
}

}  // namespace loupe::kernels
