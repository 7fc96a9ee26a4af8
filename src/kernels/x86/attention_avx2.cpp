// AVX2 + F16C attention: the shared kernel (attention_x86.inc) with 8 queries per vector
// and 2 × 4 score and value tiles within 16 registers.
#include "kernels/attention_isa.h"

#if !defined(__x86_64__)
namespace loupe::kernels::isa {
AttentionKernel avx2_attention() { return {}; }
}  // namespace loupe::kernels::isa
#else
#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/quant.h"

namespace loupe::kernels::isa {
namespace avx2_attn {

using F = __m256;
using M = __m256;
constexpr int64_t kLanes = 8;
constexpr int kQueryVecs = 2;
constexpr int kKeyStep = 4;
constexpr int kDimStep = 4;

inline F f_load(const float* p) { return _mm256_loadu_ps(p); }
inline void f_store(float* p, F v) { _mm256_storeu_ps(p, v); }
inline F f_set1(float x) { return _mm256_set1_ps(x); }
inline F f_zero() { return _mm256_setzero_ps(); }
inline F f_add(F a, F b) { return _mm256_add_ps(a, b); }
inline F f_mul(F a, F b) { return _mm256_mul_ps(a, b); }
inline F f_max(F a, F b) { return _mm256_max_ps(a, b); }
inline F f_fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
inline M f_le(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
inline M f_and(M a, M b) { return _mm256_and_ps(a, b); }
inline F f_select(M m, F a, F b) { return _mm256_blendv_ps(b, a, m); }


inline void f16_row(const uint16_t* src, int64_t n, float* dst) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  for (; i < n; ++i) dst[i] = _cvtsh_ss(src[i]);
}

#include "kernels/x86/attention_x86.inc"

}  // namespace avx2_attn

AttentionKernel avx2_attention() { return avx2_attn::make_attention(); }

}  // namespace loupe::kernels::isa

#endif  // __x86_64__
