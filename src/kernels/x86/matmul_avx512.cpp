// AVX-512 matmul kernels (VL/BW/DQ/VNNI, and BF16 where the CPU has it): the shared x86
// kernels with vpdpbusd / vpdpwssd for the byte and word dot products, 32 vector
// registers for wider token tiles, and vdpbf16ps for BF16 weights.
#include "kernels/matmul_isa.h"

// Other targets build this file empty-handed: the level is never selected there.
#if !defined(__x86_64__)
namespace loupe::kernels::isa {
WeightKernel avx512_kernel(DType) { return {}; }
}  // namespace loupe::kernels::isa
#else
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/matmul_isa.h"
#include "simd/cpu.h"
#include "tensor/blocks.h"
#include "tensor/quant.h"

namespace loupe::kernels::isa {
namespace avx512 {

constexpr int kChains = 4;  // independent F32 accumulators per token (Q8_0 family)
constexpr int kFloatTokens = 4;

template <int kOffset>
inline __m256i dot_q8_block(__m256i u, __m256i a, __m256i bias) {
  return _mm256_dpbusd_epi32(bias, u, a);
}

inline __m256i madd16_acc(__m256i acc, __m256i x, __m256i y) {
  return _mm256_dpwssd_epi32(acc, x, y);
}

#include "kernels/x86/matmul_x86.inc"

// BF16 weights against BF16-rounded activations kept as BF16: vdpbf16ps multiplies pairs
// exactly and accumulates in F32 (as ggml's AVX512BF16 ggml_vec_dot_bf16).
void convert_bf16(const float* x, int64_t n, uint8_t* out) {
  uint16_t* y = reinterpret_cast<uint16_t*>(out);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtepi32_epi16(bf16_bits(_mm256_loadu_ps(x + i))));
  for (; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

template <int NT>
void dot_bf16(const uint16_t* w, const uint16_t* a, size_t a_stride, int64_t n, float* out) {
  __m256 acc[NT][4];
  for (int t = 0; t < NT; ++t)
    for (int k = 0; k < 4; ++k) acc[t][k] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int k = 0; k < 4; ++k) {
      const __m256bh wv = (__m256bh)_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 16 * k));
      for (int t = 0; t < NT; ++t)
        acc[t][k] = _mm256_dpbf16_ps(
            acc[t][k], wv,
            (__m256bh)_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + t * a_stride + i + 16 * k)));
    }
  for (; i + 16 <= n; i += 16) {
    const __m256bh wv = (__m256bh)_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i));
    for (int t = 0; t < NT; ++t)
      acc[t][0] = _mm256_dpbf16_ps(
          acc[t][0], wv,
          (__m256bh)_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + t * a_stride + i)));
  }
  for (int t = 0; t < NT; ++t) {
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]),
                                  _mm256_add_ps(acc[t][2], acc[t][3])));
    for (int64_t j = i; j < n; ++j)
      s += LoadBF16::scalar(w + j) * LoadBF16::scalar(a + t * a_stride + j);
    out[t] = s;
  }
}

struct Bf16Family {
  static size_t act_row_bytes(int64_t n) { return static_cast<size_t>(n) * sizeof(uint16_t); }
  static const void* prepare(const uint8_t* row, int64_t, void*) { return row; }
  template <int NT>
  static void dot(const void* prepared, const uint8_t* act, size_t act_bytes, int64_t n,
                  float* out) {
    dot_bf16<NT>(static_cast<const uint16_t*>(prepared), reinterpret_cast<const uint16_t*>(act),
                 act_bytes / sizeof(uint16_t), n, out);
  }
  static constexpr int kTokens = kFloatTokens;
};

}  // namespace avx512

WeightKernel avx512_kernel(DType type) {
  using namespace avx512;
  if (type == DType::kBF16)
    return simd::cpu_features().avx512bf16 ? make<Bf16Family>(&convert_bf16)
                                           : make<FloatFamily<LoadBF16>>(&convert_bf16_f32);
  return common_kernel(type);
}

}  // namespace loupe::kernels::isa

#endif  // __x86_64__
