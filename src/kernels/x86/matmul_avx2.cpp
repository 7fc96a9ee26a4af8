// AVX2 + FMA + F16C matmul kernels (compiled with those flags only; see CMakeLists.txt).
// Without VNNI the unsigned×signed byte dot is maddubs + madd, exact while a pair of
// products fits int16: true for 4- and 6-bit codes; Q8_0's full-range codes take the sign
// trick (|w| · sign(a, w)) instead of the +128 offset.
#include "kernels/matmul_isa.h"

// Other targets build this file empty-handed: the level is never selected there.
#if !defined(__x86_64__)
namespace loupe::kernels::isa {
WeightKernel avx2_kernel(DType) { return {}; }
}  // namespace loupe::kernels::isa
#else
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/matmul_isa.h"
#include "tensor/blocks.h"
#include "tensor/quant.h"

namespace loupe::kernels::isa {
namespace avx2 {

constexpr int kChains = 2;  // independent F32 accumulators per token (Q8_0 family)
constexpr int kFloatTokens = 2;  // 4 accumulators per token within 16 registers

template <int kOffset>
inline __m256i dot_q8_block(__m256i u, __m256i a, __m256i bias) {
  const __m256i ones = _mm256_set1_epi16(1);
  if constexpr (kOffset > 64) {
    const __m256i w = _mm256_xor_si256(u, _mm256_set1_epi8(static_cast<char>(0x80)));
    return _mm256_madd_epi16(
        _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w)), ones);
  } else {
    return _mm256_add_epi32(bias, _mm256_madd_epi16(_mm256_maddubs_epi16(u, a), ones));
  }
}

inline __m256i madd16_acc(__m256i acc, __m256i x, __m256i y) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
}

#include "kernels/x86/matmul_x86.inc"

}  // namespace avx2

WeightKernel avx2_kernel(DType type) {
  using namespace avx2;
  if (type == DType::kBF16) return make<FloatFamily<LoadBF16>>(&convert_bf16_f32);
  return common_kernel(type);
}

}  // namespace loupe::kernels::isa

#endif  // __x86_64__
