// AVX-512 attention: the shared kernel (attention_x86.inc) with 16 queries per vector and
// 32 registers for 2 × 8 score and value tiles.
#include "kernels/attention_isa.h"

#if !defined(__x86_64__)
namespace loupe::kernels::isa {
AttentionKernel avx512_attention() { return {}; }
}  // namespace loupe::kernels::isa
#else
// gcc 12's 512-bit intrinsics start from _mm512_undefined_ps(), which -Wmaybe-uninitialized
// reports inside the headers (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
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
namespace avx512_attn {

using F = __m512;
using M = __mmask16;
constexpr int64_t kLanes = 16;
constexpr int kQueryVecs = 2;
constexpr int kKeyStep = 8;
constexpr int kDimStep = 8;

inline F f_load(const float* p) { return _mm512_loadu_ps(p); }
inline void f_store(float* p, F v) { _mm512_storeu_ps(p, v); }
inline F f_set1(float x) { return _mm512_set1_ps(x); }
inline F f_zero() { return _mm512_setzero_ps(); }
inline F f_add(F a, F b) { return _mm512_add_ps(a, b); }
inline F f_mul(F a, F b) { return _mm512_mul_ps(a, b); }
inline F f_max(F a, F b) { return _mm512_max_ps(a, b); }
inline F f_fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
inline M f_le(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
inline M f_and(M a, M b) { return static_cast<M>(a & b); }
inline F f_select(M m, F a, F b) { return _mm512_mask_blend_ps(m, b, a); }
inline F f_sub(F a, F b) { return _mm512_sub_ps(a, b); }
inline F f_round_f16(F x) { return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT)); }

// exp_det (kernels/exp.h) on 8 doubles: the same operations, so the same bits.
inline __m512d exp_core(__m512d x) {
  using namespace exp_detail;
  const __m512d n = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(kLog2e)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(kLn2Hi), x);
  r = _mm512_fnmadd_pd(n, _mm512_set1_pd(kLn2Lo), r);
  __m512d p = _mm512_set1_pd(kC[8]);
  for (int k = 7; k >= 0; --k) p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(kC[k]));
  const __m512i bits = _mm512_slli_epi64(
      _mm512_add_epi64(_mm512_castpd_si512(_mm512_add_pd(n, _mm512_set1_pd(kRound))),
                       _mm512_set1_epi64(1023)),
      52);
  return _mm512_mul_pd(p, _mm512_castsi512_pd(bits));
}

inline F f_exp(F x) {
  using namespace exp_detail;
  const F xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(kLo)), _mm512_set1_ps(kHi));
  const __m256 lo = _mm512_cvtpd_ps(exp_core(_mm512_cvtps_pd(_mm512_castps512_ps256(xc))));
  const __m256 hi = _mm512_cvtpd_ps(exp_core(_mm512_cvtps_pd(_mm512_extractf32x8_ps(xc, 1))));
  F y = _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
  y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(kLo), _CMP_LT_OQ), y,
                           _mm512_setzero_ps());
  y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(kHi), _CMP_GT_OQ), y,
                           _mm512_set1_ps(INFINITY));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}

// kLanes doubles: the per-query sums of the softmax.
struct D {
  __m512d lo, hi;
};
inline D d_zero() { return {_mm512_setzero_pd(), _mm512_setzero_pd()}; }
inline D d_add(D s, F e) {
  return {_mm512_add_pd(s.lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e))),
          _mm512_add_pd(s.hi, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)))};
}
inline void d_store(double* p, D s) {
  _mm512_storeu_pd(p, s.lo);
  _mm512_storeu_pd(p + 8, s.hi);
}


inline void f16_row(const uint16_t* src, int64_t n, float* dst) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
  for (; i < n; ++i) dst[i] = _cvtsh_ss(src[i]);
}

#include "kernels/x86/attention_x86.inc"

}  // namespace avx512_attn

AttentionKernel avx512_attention() { return avx512_attn::make_attention(); }

}  // namespace loupe::kernels::isa

#endif  // __x86_64__
