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

#include "kernels/exp.h"
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
inline F f_sub(F a, F b) { return _mm256_sub_ps(a, b); }
inline F f_round_f16(F x) { return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT)); }

// exp_det (kernels/exp.h) on 4 doubles: the same operations, so the same bits.
inline __m256d exp_core(__m256d x) {
  using namespace exp_detail;
  const __m256d n = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(kLog2e)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(kLn2Hi), x);
  r = _mm256_fnmadd_pd(n, _mm256_set1_pd(kLn2Lo), r);
  __m256d p = _mm256_set1_pd(kC[8]);
  for (int k = 7; k >= 0; --k) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(kC[k]));
  const __m256i bits = _mm256_slli_epi64(
      _mm256_add_epi64(_mm256_castpd_si256(_mm256_add_pd(n, _mm256_set1_pd(kRound))),
                       _mm256_set1_epi64x(1023)),
      52);
  return _mm256_mul_pd(p, _mm256_castsi256_pd(bits));
}

inline F f_exp(F x) {
  using namespace exp_detail;
  const F xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kLo)), _mm256_set1_ps(kHi));
  const __m128 lo = _mm256_cvtpd_ps(exp_core(_mm256_cvtps_pd(_mm256_castps256_ps128(xc))));
  const __m128 hi = _mm256_cvtpd_ps(exp_core(_mm256_cvtps_pd(_mm256_extractf128_ps(xc, 1))));
  F y = _mm256_set_m128(hi, lo);
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(kLo), _CMP_LT_OQ));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, _mm256_set1_ps(kHi), _CMP_GT_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// kLanes doubles: the per-query sums of the softmax.
struct D {
  __m256d lo, hi;
};
inline D d_zero() { return {_mm256_setzero_pd(), _mm256_setzero_pd()}; }
inline D d_add(D s, F e) {
  return {_mm256_add_pd(s.lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e))),
          _mm256_add_pd(s.hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)))};
}
inline void d_store(double* p, D s) {
  _mm256_storeu_pd(p, s.lo);
  _mm256_storeu_pd(p + 4, s.hi);
}


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
