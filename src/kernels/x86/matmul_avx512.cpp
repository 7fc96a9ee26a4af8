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
// gcc 12's 512-bit intrinsics start from _mm512_undefined_*(), which -Wmaybe-uninitialized
// reports inside the headers (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
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

// ---------------------------------------------------------------------------------------
// Q4_0 / Q8_0 on panels of 16 rows, GEMV and GEMM alike: lane i of a zmm belongs to row
// p0 + i. A panel block is 8 zmm of unsigned codes (zmm k, lane i: codes 4k..4k+3 of row i)
// and a zmm of the rows' F32 scales, decoded from the stored blocks by a 16×4-dword
// transpose. Per (row, token) and block: the exact integer dot product (the activations'
// bias_sum plus 8 vpdpbusd, each with one dword of the token's codes broadcast), then one
// F32 step y = fma(float(isum), d_w·d_a, y): a single chain over the blocks per output,
// whatever the number of tokens, the tile or the panel the row sits in, so GEMV and GEMM
// give the same bits. A tile of 8 tokens keeps 8 integer and 8 float accumulators live:
// each weight vector feeds 8 vpdpbusd and one F32 rescale covers 16 rows.

constexpr int kPanel = 16;
constexpr int kPanelTokens = 8;

// out[k] lane i = dword k of the 16 bytes at rows[i] + off (k = 0..3).
inline void transpose16x4(const uint8_t* const* rows, size_t off, __m512i out[4]) {
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  __m512i a[4];
  for (int g = 0; g < 4; ++g) {
    __m512i x = _mm512_castsi128_si512(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[4 * g] + off)));
    for (int m = 1; m < 4; ++m)
      x = _mm512_inserti32x4(x, _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[4 * g + m] + off)), m);
    a[g] = _mm512_permutexvar_epi32(idx, x);  // 128-bit lane k: dword k of the 4 rows
  }
  const __m512i u0 = _mm512_shuffle_i32x4(a[0], a[1], _MM_SHUFFLE(1, 0, 1, 0));
  const __m512i u1 = _mm512_shuffle_i32x4(a[0], a[1], _MM_SHUFFLE(3, 2, 3, 2));
  const __m512i u2 = _mm512_shuffle_i32x4(a[2], a[3], _MM_SHUFFLE(1, 0, 1, 0));
  const __m512i u3 = _mm512_shuffle_i32x4(a[2], a[3], _MM_SHUFFLE(3, 2, 3, 2));
  out[0] = _mm512_shuffle_i32x4(u0, u2, _MM_SHUFFLE(2, 0, 2, 0));
  out[1] = _mm512_shuffle_i32x4(u0, u2, _MM_SHUFFLE(3, 1, 3, 1));
  out[2] = _mm512_shuffle_i32x4(u1, u3, _MM_SHUFFLE(2, 0, 2, 0));
  out[3] = _mm512_shuffle_i32x4(u1, u3, _MM_SHUFFLE(3, 1, 3, 1));
}

// The F16 scales (first field of both block types) of block b of the 16 rows.
template <class Block>
inline __m512 panel_scales(const uint8_t* const* rows, int64_t b) {
  alignas(32) uint16_t h[kPanel];
  for (int i = 0; i < kPanel; ++i)
    std::memcpy(&h[i], rows[i] + static_cast<size_t>(b) * sizeof(Block), sizeof(uint16_t));
  return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(h)));
}

struct PanelQ4_0 {
  using Block = BlockQ4_0;
  static constexpr int kOffset = 8;
  static void codes(const uint8_t* const* rows, int64_t b, __m512i w[8]) {
    __m512i t[4];
    transpose16x4(rows, static_cast<size_t>(b) * sizeof(Block) + 2, t);
    const __m512i mask = _mm512_set1_epi8(0x0f);
    for (int k = 0; k < 4; ++k) {
      w[k] = _mm512_and_si512(t[k], mask);
      w[k + 4] = _mm512_and_si512(_mm512_srli_epi16(t[k], 4), mask);
    }
  }
};

struct PanelQ8_0 {
  using Block = BlockQ8_0;
  static constexpr int kOffset = 128;
  static void codes(const uint8_t* const* rows, int64_t b, __m512i w[8]) {
    const size_t off = static_cast<size_t>(b) * sizeof(Block) + 2;
    transpose16x4(rows, off, w);
    transpose16x4(rows, off + 16, w + 4);
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    for (int k = 0; k < 8; ++k) w[k] = _mm512_xor_si512(w[k], flip);
  }
};

struct alignas(64) PanelBlock {
  __m512i w[8];
  __m512 d;
};

template <class Decoder>
struct PanelDirect {
  const uint8_t* const* rows;
  void block(int64_t b, __m512i w[8], __m512& d) const {
    Decoder::codes(rows, b, w);
    d = panel_scales<typename Decoder::Block>(rows, b);
  }
};

struct PanelPrepared {
  const PanelBlock* blocks;
  void block(int64_t b, __m512i w[8], __m512& d) const {
    for (int k = 0; k < 8; ++k) w[k] = _mm512_load_si512(&blocks[b].w[k]);
    d = _mm512_load_ps(&blocks[b].d);
  }
};

// out[t][i] = row p0+i · token t for NT tokens whose activation rows start at `act`.
template <int NT, class Src>
void panel_tile(const Src& src, int64_t nb, const uint8_t* act, size_t act_bytes, float* out) {
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m512i w[8];
    __m512 dw;
    src.block(b, w, dw);
    __m512i isum[NT];
    for (int t = 0; t < NT; ++t)
      isum[t] = _mm512_set1_epi32(reinterpret_cast<const ActQ8x*>(act + t * act_bytes)[b].bias_sum);
    for (int k = 0; k < 8; ++k)
      for (int t = 0; t < NT; ++t) {
        int32_t codes;
        std::memcpy(&codes, reinterpret_cast<const ActQ8x*>(act + t * act_bytes)[b].q + 4 * k,
                    sizeof(codes));
        isum[t] = _mm512_dpbusd_epi32(isum[t], w[k], _mm512_set1_epi32(codes));
      }
    for (int t = 0; t < NT; ++t) {
      const float da = reinterpret_cast<const ActQ8x*>(act + t * act_bytes)[b].d;
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(dw, _mm512_set1_ps(da)),
                               acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) _mm512_storeu_ps(out + kPanel * t, acc[t]);
}

template <class Src>
void panel_tokens(const Src& src, int64_t nb, const uint8_t* act, size_t act_bytes, int n,
                  float* out) {
  switch (n) {
#define LOUPE_PANEL_CASE(N) \
  case N:                   \
    panel_tile<N>(src, nb, act, act_bytes, out); \
    break;
    LOUPE_PANEL_CASE(1)
    LOUPE_PANEL_CASE(2)
    LOUPE_PANEL_CASE(3)
    LOUPE_PANEL_CASE(4)
    LOUPE_PANEL_CASE(5)
    LOUPE_PANEL_CASE(6)
    LOUPE_PANEL_CASE(7)
    LOUPE_PANEL_CASE(8)
#undef LOUPE_PANEL_CASE
    default:
      break;
  }
}

template <class Decoder>
void panel_rows(const Matrix& w, const ActView& a, int64_t r0, int64_t r1, float* y,
                int64_t y_stride) {
  static_assert(kPanelTokens == 8);
  const int64_t nb = w.n_in / kQk;
  thread_local std::vector<PanelBlock> prepared;
  if (prepared.size() < static_cast<size_t>(nb)) prepared.resize(static_cast<size_t>(nb));
  alignas(64) float out[kPanelTokens][kPanel];
  for (int64_t tb = 0; tb < a.n_tokens; tb += kTokenBlock) {
    const int64_t te = std::min<int64_t>(a.n_tokens, tb + kTokenBlock);
    for (int64_t p0 = r0; p0 < r1; p0 += kPanel) {
      const int n_rows = static_cast<int>(std::min<int64_t>(kPanel, r1 - p0));
      // A partial panel repeats its last row in the spare lanes (their results are dropped).
      const uint8_t* rows[kPanel];
      for (int i = 0; i < kPanel; ++i)
        rows[i] = w.data + static_cast<size_t>(p0 + std::min(i, n_rows - 1)) * w.row_stride;
      // The next panel's bytes are requested while this one computes (GEMV streams rows).
      if (p0 + kPanel < r1) {
        const uint8_t* next = w.data + static_cast<size_t>(p0 + kPanel) * w.row_stride;
        const size_t bytes = static_cast<size_t>(std::min<int64_t>(kPanel, r1 - p0 - kPanel)) * w.row_stride;
        for (size_t off = 0; off < bytes; off += 64)
          _mm_prefetch(reinterpret_cast<const char*>(next + off), _MM_HINT_T0);
      }
      auto emit = [&](int64_t t0, int n) {
        for (int t = 0; t < n; ++t) {
          float* dst = y + (t0 + t) * y_stride + p0;
          _mm512_mask_storeu_ps(dst, static_cast<__mmask16>((1u << n_rows) - 1), _mm512_load_ps(out[t]));
        }
      };
      if (te - tb <= kPanelTokens) {  // one tile: decode in place, the rows stream once
        const int n = static_cast<int>(te - tb);
        panel_tokens(PanelDirect<Decoder>{rows}, nb, a.data + tb * a.row_bytes, a.row_bytes, n,
                     &out[0][0]);
        emit(tb, n);
        continue;
      }
      for (int64_t b = 0; b < nb; ++b) {
        Decoder::codes(rows, b, prepared[b].w);
        prepared[b].d = panel_scales<typename Decoder::Block>(rows, b);
      }
      const PanelPrepared src{prepared.data()};
      for (int64_t t = tb; t < te; t += kPanelTokens) {
        const int n = static_cast<int>(std::min<int64_t>(kPanelTokens, te - t));
        panel_tokens(src, nb, a.data + t * a.row_bytes, a.row_bytes, n, &out[0][0]);
        emit(t, n);
      }
    }
  }
}

template <class Decoder>
WeightKernel make_panel() {
  WeightKernel k;
  k.act_row_bytes = &Q8Family<Decoder>::act_row_bytes;
  k.convert = &convert_q8x<Decoder::kOffset>;
  k.rows = &panel_rows<Decoder>;
  k.row_align = kPanel;
  return k;
}

}  // namespace avx512

WeightKernel avx512_kernel(DType type) {
  using namespace avx512;
  if (WeightKernel k = avx512_kquant_kernel(type)) return k;
  if (WeightKernel k = avx512_float_kernel(type)) return k;
  if (type == DType::kQ4_0) return make_panel<PanelQ4_0>();
  if (type == DType::kQ8_0) return make_panel<PanelQ8_0>();
  if (type == DType::kBF16)
    return simd::cpu_features().avx512bf16 ? make<Bf16Family>(&convert_bf16)
                                           : make<FloatFamily<LoadBF16>>(&convert_bf16_f32);
  return common_kernel(type);
}

}  // namespace loupe::kernels::isa

#endif  // __x86_64__
