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
// (and, once inlined, -Wuninitialized) reports inside the headers (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
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

// Block scales of the 16 rows (the first field of every panel type's block): F16, or an
// E8M0 exponent (MXFP4, halved like the scalar twin's e8m0_half since its values are doubled).
struct ScaleF16 {
  static constexpr int kBytes = 2;
  static __m512 direct(const uint8_t* const* rows, size_t off) {
    alignas(32) uint16_t h[kPanel];
    for (int i = 0; i < kPanel; ++i) std::memcpy(&h[i], rows[i] + off, sizeof(uint16_t));
    return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(h)));
  }
  static __m512 packed(const uint8_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
};

struct ScaleE8M0 {
  static constexpr int kBytes = 1;
  // e < 2: 2^(e - 128) as the subnormal 0x00200000 << e; else (e - 1) << 23 = 2^(e - 128).
  static __m512 from_bytes(__m128i e8) {
    const __m512i e = _mm512_cvtepu8_epi32(e8);
    const __m512i normal = _mm512_slli_epi32(_mm512_sub_epi32(e, _mm512_set1_epi32(1)), 23);
    const __m512i tiny = _mm512_sllv_epi32(_mm512_set1_epi32(0x00200000), e);
    const __mmask16 small = _mm512_cmplt_epu32_mask(e, _mm512_set1_epi32(2));
    return _mm512_castsi512_ps(_mm512_mask_blend_epi32(small, normal, tiny));
  }
  static __m512 direct(const uint8_t* const* rows, size_t off) {
    alignas(16) uint8_t e[kPanel];
    for (int i = 0; i < kPanel; ++i) e[i] = rows[i][off];
    return from_bytes(_mm_load_si128(reinterpret_cast<const __m128i*>(e)));
  }
  static __m512 packed(const uint8_t* p) {
    return from_bytes(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
};

// Packed layout (PackedWeights): per panel of 16 rows, block by block, the stored form of
// what codes() builds (4-bit types: the 4 transposed zmm of nibbles before unpacking; Q8_0:
// the 8 zmm, sign-flipped) followed by the 16 rows' scales as stored: 16 × sizeof(Block)
// bytes, the source's own size, so packing changes where bytes sit, never their count.
//
// 4-bit types: 16 bytes of nibbles at kQs in each block (low nibbles: values 0-15, high:
// 16-31). Q4_0 feeds vpdpbusd the nibble itself (offset 8); IQ4_NL and MXFP4 map it through
// their value table, stored + 128 so that it is unsigned (offset 128).
struct NoTable {
  static constexpr const int8_t* kValues = nullptr;
};
struct Iq4nlTable {
  static constexpr const int8_t* kValues = kIq4nlValues;
};
struct Mxfp4Table {
  static constexpr const int8_t* kValues = kMxfp4Values;
};

template <class B, int kQs, class Scale, class Table>
struct Panel4 {
  using Block = B;
  static constexpr int kOffset = Table::kValues == nullptr ? 8 : 128;
  static constexpr int kStored = 4;  // zmm stored per packed block
  static constexpr int kScaleBytes = Scale::kBytes;
  static void unpack(const __m512i t[4], __m512i w[8]) {
    const __m512i mask = _mm512_set1_epi8(0x0f);
    for (int k = 0; k < 4; ++k) {
      w[k] = _mm512_and_si512(t[k], mask);
      w[k + 4] = _mm512_and_si512(_mm512_srli_epi16(t[k], 4), mask);
    }
    if constexpr (Table::kValues != nullptr) {
      alignas(16) uint8_t lut[16];
      for (int i = 0; i < 16; ++i) lut[i] = static_cast<uint8_t>(Table::kValues[i] + 128);
      const __m512i table =
          _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(lut)));
      for (int k = 0; k < 8; ++k) w[k] = _mm512_shuffle_epi8(table, w[k]);
    }
  }
  static void stored(const uint8_t* const* rows, int64_t b, __m512i t[4]) {
    transpose16x4(rows, static_cast<size_t>(b) * sizeof(Block) + kQs, t);
  }
  static void codes(const uint8_t* const* rows, int64_t b, __m512i w[8]) {
    __m512i t[4];
    stored(rows, b, t);
    unpack(t, w);
  }
  static void packed_codes(const uint8_t* blk, __m512i w[8]) {
    __m512i t[4];
    for (int k = 0; k < 4; ++k) t[k] = _mm512_loadu_si512(blk + 64 * k);
    unpack(t, w);
  }
  static __m512 scales(const uint8_t* const* rows, int64_t b) {
    return Scale::direct(rows, static_cast<size_t>(b) * sizeof(Block));
  }
  static __m512 packed_scales(const uint8_t* p) { return Scale::packed(p); }
};

using PanelQ4_0 = Panel4<BlockQ4_0, 2, ScaleF16, NoTable>;
using PanelIq4Nl = Panel4<BlockIq4Nl, 2, ScaleF16, Iq4nlTable>;
using PanelMxfp4 = Panel4<BlockMxfp4, 1, ScaleE8M0, Mxfp4Table>;

struct PanelQ8_0 {
  using Block = BlockQ8_0;
  static constexpr int kOffset = 128;
  static constexpr int kStored = 8;
  static constexpr int kScaleBytes = 2;
  static void codes(const uint8_t* const* rows, int64_t b, __m512i w[8]) {
    const size_t off = static_cast<size_t>(b) * sizeof(Block) + 2;
    transpose16x4(rows, off, w);
    transpose16x4(rows, off + 16, w + 4);
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    for (int k = 0; k < 8; ++k) w[k] = _mm512_xor_si512(w[k], flip);
  }
  static void stored(const uint8_t* const* rows, int64_t b, __m512i t[8]) { codes(rows, b, t); }
  static void packed_codes(const uint8_t* blk, __m512i w[8]) {
    for (int k = 0; k < 8; ++k) w[k] = _mm512_loadu_si512(blk + 64 * k);
  }
  static __m512 scales(const uint8_t* const* rows, int64_t b) {
    return ScaleF16::direct(rows, static_cast<size_t>(b) * sizeof(Block));
  }
  static __m512 packed_scales(const uint8_t* p) { return ScaleF16::packed(p); }
};

// Bytes of one packed block of a 16-row panel: the stored zmm, then 16 scales.
template <class Decoder>
constexpr size_t packed_block_bytes() {
  return 64 * Decoder::kStored + Decoder::kScaleBytes * kPanel;
}
static_assert(packed_block_bytes<PanelQ4_0>() == kPanel * sizeof(BlockQ4_0));
static_assert(packed_block_bytes<PanelIq4Nl>() == kPanel * sizeof(BlockIq4Nl));
static_assert(packed_block_bytes<PanelMxfp4>() == kPanel * sizeof(BlockMxfp4));
static_assert(packed_block_bytes<PanelQ8_0>() == kPanel * sizeof(BlockQ8_0));

struct alignas(64) PanelBlock {
  __m512i w[8];
  __m512 d;
};

template <class Decoder>
struct PanelDirect {
  const uint8_t* const* rows;
  void block(int64_t b, __m512i w[8], __m512& d) const {
    Decoder::codes(rows, b, w);
    d = Decoder::scales(rows, b);
  }
};

// Where block b of a packed panel keeps its codes and its scales. Blocks go in pairs: the
// codes of both, then the scales of both (2 × 288 = 9 cache lines for Q4_0, 2 × 544 = 17 for
// Q8_0), so with an even block count every code vector of those starts on a cache line; a
// last odd block stands alone.
template <class Decoder>
inline void packed_offsets(int64_t nb, int64_t b, size_t& codes, size_t& scales) {
  constexpr size_t kCodes = 64 * Decoder::kStored;
  const int64_t pair = b / 2, j = b % 2;
  const size_t base = static_cast<size_t>(pair) * 2 * packed_block_bytes<Decoder>();
  const int64_t in_pair = std::min<int64_t>(2, nb - 2 * pair);
  codes = base + static_cast<size_t>(j) * kCodes;
  scales = base + static_cast<size_t>(in_pair) * kCodes +
           static_cast<size_t>(j) * Decoder::kScaleBytes * kPanel;
}

// A panel of the packed copy (see packed_offsets).
template <class Decoder>
struct PanelPacked {
  const uint8_t* panel;
  int64_t nb;
  void block(int64_t b, __m512i w[8], __m512& d) const {
    size_t codes, scales;
    packed_offsets<Decoder>(nb, b, codes, scales);
    // A steady stream of requests ~4 KiB ahead (one block's bytes per block) keeps a GEMV at
    // the memory's full rate; bursts of a whole panel at once stall on the fill buffers.
    // Past the panel it runs into the next one (contiguous) or nowhere (prefetches never fault).
    constexpr size_t kBlock = packed_block_bytes<Decoder>();
    constexpr size_t kAhead = (4096 + kBlock - 1) / kBlock * kBlock;
    const char* ahead = reinterpret_cast<const char*>(panel + codes) + kAhead;
    for (size_t off = 0; off < kBlock; off += 64) _mm_prefetch(ahead + off, _MM_HINT_T0);
    Decoder::packed_codes(panel + codes, w);
    d = Decoder::packed_scales(panel + scales);
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
      // The next panel's bytes are requested while this one computes (GEMV streams rows);
      // a packed panel streams its own blocks ahead instead (PanelPacked::block).
      if (p0 + kPanel < r1 && w.packed == nullptr) {
        const uint8_t* base = w.packed != nullptr ? w.packed : w.data;
        const uint8_t* next = base + static_cast<size_t>(p0 + kPanel) * w.row_stride;
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
      // Packed at load: no transposition; one tile reads the panel straight from the copy.
      const PanelPacked<Decoder> packed{w.packed + static_cast<size_t>(p0) * w.row_stride, nb};
      if (te - tb <= kPanelTokens) {  // one tile: decode in place, the rows stream once
        const int n = static_cast<int>(te - tb);
        if (w.packed != nullptr)
          panel_tokens(packed, nb, a.data + tb * a.row_bytes, a.row_bytes, n, &out[0][0]);
        else
          panel_tokens(PanelDirect<Decoder>{rows}, nb, a.data + tb * a.row_bytes, a.row_bytes, n,
                       &out[0][0]);
        emit(tb, n);
        continue;
      }
      // More tiles: the panel's codes unpacked once per token block, then read by each tile.
      for (int64_t b = 0; b < nb; ++b) {
        if (w.packed != nullptr) {
          packed.block(b, prepared[b].w, prepared[b].d);
        } else {
          Decoder::codes(rows, b, prepared[b].w);
          prepared[b].d = Decoder::scales(rows, b);
        }
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

// Whole panels only: a matrix whose row count is a multiple of 16.
bool can_pack_panels(const Matrix& w) {
  return w.n_out > 0 && w.n_out % kPanel == 0 && w.n_in % kQk == 0;
}

template <class Decoder>
void pack_panels(const Matrix& w, uint8_t* out) {
  const int64_t nb = w.n_in / kQk;
  for (int64_t p0 = 0; p0 < w.n_out; p0 += kPanel) {
    const uint8_t* rows[kPanel];
    for (int i = 0; i < kPanel; ++i) rows[i] = w.data + static_cast<size_t>(p0 + i) * w.row_stride;
    uint8_t* panel = out + static_cast<size_t>(p0) * w.row_stride;
    for (int64_t b = 0; b < nb; ++b) {
      size_t codes, scales;
      packed_offsets<Decoder>(nb, b, codes, scales);
      __m512i t[8];
      Decoder::stored(rows, b, t);
      for (int k = 0; k < Decoder::kStored; ++k) _mm512_storeu_si512(panel + codes + 64 * k, t[k]);
      constexpr int kBytes = Decoder::kScaleBytes;
      for (int i = 0; i < kPanel; ++i)
        std::memcpy(panel + scales + kBytes * i,
                    rows[i] + static_cast<size_t>(b) * sizeof(typename Decoder::Block), kBytes);
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
  k.can_pack = &can_pack_panels;
  k.pack = &pack_panels<Decoder>;
  return k;
}

}  // namespace avx512

WeightKernel avx512_kernel(DType type) {
  using namespace avx512;
  if (WeightKernel k = avx512_kquant_kernel(type)) return k;
  if (WeightKernel k = avx512_float_kernel(type)) return k;
  if (type == DType::kQ4_0) return make_panel<PanelQ4_0>();
  if (type == DType::kQ8_0) return make_panel<PanelQ8_0>();
  if (type == DType::kIQ4_NL) return make_panel<PanelIq4Nl>();
  if (type == DType::kMXFP4) return make_panel<PanelMxfp4>();
  if (type == DType::kBF16)
    return simd::cpu_features().avx512bf16 ? make<Bf16Family>(&convert_bf16)
                                           : make<FloatFamily<LoadBF16>>(&convert_bf16_f32);
  return common_kernel(type);
}

}  // namespace loupe::kernels::isa

#endif  // __x86_64__
