// Helpers shared by the reference quantizers (quant_*.cpp); not part of the module API.
//
// Numerics: every expression is written in the operand order of ggml-quants.c, in float,
// because the quantizers' search loops compare sums of products and a different rounding
// can pick a different scale. This relies on no FP contraction into FMA (GCC's default in
// ISO C++ mode, and baseline x86-64 has no FMA anyway).
#pragma once

#include <cassert>
#include <cmath>
#include <cstdint>

namespace loupe::quant_detail {

// Round to nearest, ties to even, as ggml's nearest_int (which adds 1.5 * 2^23 and reads
// the mantissa; identical for |x| < 2^22, the range it asserts).
inline int nearest_int(float x) {
  assert(std::fabs(x) <= 4194303.f);
  return static_cast<int>(std::lrint(x));
}

inline int clamp_int(int v, int lo, int hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// The element of largest magnitude (the first one on ties) and that magnitude: ggml's
// quantizers scale by the signed value so the extreme maps exactly onto an end code.
struct SignedMax {
  float amax = 0;  // |max|
  float max = 0;   // the element itself, sign kept
};

inline SignedMax signed_absmax(const float* x, int n) {
  SignedMax m;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > m.amax) {
      m.amax = ax;
      m.max = x[i];
    }
  }
  return m;
}

}  // namespace loupe::quant_detail
