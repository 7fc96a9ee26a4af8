// Linear-attention recurrences (Gated DeltaNet; Yang et al. 2024), one token at a time,
// in F32 with the operation order of ggml's gated_delta_net and ssm_conv.
#pragma once

#include <cstdint>

namespace loupe::kernels {

// One step of the gated delta rule for one value head. `state` is M [S][S] with
// M[j][i] = S[i][j] (i = key dim, j = value dim). With decay = exp(g):
//   S ← decay·S;  δ = β·(v − Sᵀk);  S ← S + k·δᵀ;  out = Sᵀq / sqrt(S).
// q, k, v, out: [S].
void gated_delta_step(float* state, const float* q, const float* k, const float* v, float g,
                      float beta, int64_t s, float* out);

// Causal depthwise convolution over time for one token: window [n_kernel][n_channels]
// holds the last n_kernel inputs (oldest first, the current token last); weight is
// [n_channels][n_kernel]. out[c] = Σ_j window[j][c]·weight[c][j].
void causal_conv1d(const float* window, const float* weight, int64_t n_kernel, int64_t n_channels,
                   float* out);

}  // namespace loupe::kernels
