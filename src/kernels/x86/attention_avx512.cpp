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
