// AVX-512 VNNI kernels for K-quant weights (Q4_K, Q5_K, Q6_K) against Q8_K activations, on
// panels of 16 rows as the Q4_0 / Q8_0 panels of matmul_avx512.cpp: lane i of a zmm belongs to
// row p0 + i, and the stored super-blocks of the 16 rows are transposed so that zmm k holds, per
// row, the 4 unsigned codes of elements 4k..4k+3 (one vpdpbusd per 4 codes and token, with the
// token's 4 activation bytes broadcast).
//
// Per (row, token) and super-block the integer part is exact:
//   Q4_K / Q5_K: isum = Σ_j s_j·(Σ_32 q·a), msum = Σ_j m_j·(bsum_2j + bsum_2j+1)
//   Q6_K:        isum = Σ_g s_g·(Σ_16 (q − 32)·a)
// and then comes the only floating-point work, in this order (one chain per output over the
// super-blocks):
//   y = fma(float(isum), d_w·d_a, y);  y = fnmadd(float(msum), dmin_w·d_a, y)
// (Q6_K: the first step only). The activations (convert) are quantize_row_q8_k_ref's bits.
// The order does not depend on the number of tokens, the token's place in a tile, the panel or
// the thread, so GEMV and GEMM give the same bits.
//
// Returns an empty WeightKernel for other types; avx512_kernel (matmul_avx512.cpp) then uses the
// shared x86 kernels.
#include "kernels/matmul_isa.h"

// Other targets build this file empty-handed: the level is never selected there.
#if !defined(__x86_64__)
namespace loupe::kernels::isa {
WeightKernel avx512_kquant_kernel(DType) { return {}; }
}  // namespace loupe::kernels::isa
#else
// gcc 12's 512-bit intrinsics start from _mm512_undefined_*(), which -Wmaybe-uninitialized
// reports inside the headers (a known false positive; -Wuninitialized where the shift count
// of _mm512_slli/srli_epi32 is not an immediate).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "tensor/blocks.h"

namespace loupe::kernels::isa {
namespace {

constexpr int kPanel = 16;       // rows per panel: one per zmm lane
constexpr int kTile = 8;         // tokens per register tile
constexpr int kTokenBlock = 64;  // tokens per prepared panel: their activations stay in L2
constexpr int kAhead = 3;        // super-blocks requested ahead of the one being decoded
constexpr int kChunkBlocks = 4;  // super-blocks of a panel decoded at once for a token block

// One super-block of one token's activations: the Q8_K codes and scale exactly as
// quantize_row_q8_k_ref makes them, with its bsums regrouped for the weights' offset terms.
struct ActK {
  int8_t q[kQkK];
  int32_t q6_bias[16];  // -32·bsums[g]: Q6_K codes are stored +32
  int16_t bsum32[8];    // bsums[2j] + bsums[2j+1]: the sums Q4_K/Q5_K mins multiply
  float d;
};

size_t act_row_bytes(int64_t n) {
  return static_cast<size_t>(n / kQkK) * sizeof(ActK);
}

// quantize_row_q8_k_ref, 16 values per step and bit for bit: the same absolute maximum (the
// first element of that magnitude gives the sign), the same F32 products rounded half to even
// (vcvtps2dq in the default rounding mode is lrint), clamped at 127. The scalar reference
// costs as much as the Q4_K products themselves for a 256-row matrix.
void convert(const float* x, int64_t n, uint8_t* out) {
  ActK* y = reinterpret_cast<ActK*>(out);
  for (int64_t b = 0; b < n / kQkK; ++b, x += kQkK) {
    __m512 v[16];
    __m512 amax = _mm512_setzero_ps();
    for (int g = 0; g < 16; ++g) {
      v[g] = _mm512_loadu_ps(x + 16 * g);
      amax = _mm512_max_ps(_mm512_abs_ps(v[g]), amax);  // a NaN keeps amax, as `ax > amax`
    }
    const float am = _mm512_reduce_max_ps(amax);
    ActK& o = y[b];
    if (am == 0.0f) {
      std::memset(&o, 0, sizeof(o));
      continue;
    }
    float max = 0.0f;
    for (int g = 0; g < 16; ++g) {
      const __mmask16 hit =
          _mm512_cmp_ps_mask(_mm512_abs_ps(v[g]), _mm512_set1_ps(am), _CMP_EQ_OQ);
      if (hit) {
        max = x[16 * g + __builtin_ctz(hit)];
        break;
      }
    }
    const float iscale = -127.f / max;
    const __m512 is = _mm512_set1_ps(iscale);
    int16_t bsums[16];
    for (int g = 0; g < 16; ++g) {
      const __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(is, v[g])),
                                         _mm512_set1_epi32(127));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o.q + 16 * g), _mm512_cvtepi32_epi8(q));
      bsums[g] = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
    }
    for (int g = 0; g < 16; ++g) o.q6_bias[g] = -32 * bsums[g];
    for (int j = 0; j < 8; ++j)
      o.bsum32[j] = static_cast<int16_t>(bsums[2 * j] + bsums[2 * j + 1]);
    o.d = 1 / iscale;
  }
}

// One super-block of a 16-row panel, decoded.
struct alignas(64) PanelK {
  __m512i w[kQkK / 4];  // [64]: lane i of w[k] = unsigned codes of elements 4k..4k+3 of row i
  __m512i scale[16];    // per scale group (8 of 32 or 16 of 16 elements): lane i = int32 scale
  __m512i mins[4];      // Q4_K/Q5_K: lane i = int16 pair (m_2j, m_2j+1) of row i
  __m512 d;             // lane i = F32 d of row i
  __m512 dmin;          // Q4_K/Q5_K: lane i = F32 dmin of row i
};

// ---------------------------------------------------------------------------------------
// Transposes: the stored blocks of 16 rows to one zmm per dword position.

// out[k] lane i = dword k of the 16·kChunks bytes at rows[i] + off (k < 4·kChunks). Each
// 16-byte chunk of 16 rows: four zmm whose 128-bit lane q holds the chunk of row 4q + m
// (loads with inserts, which the CPU runs on either vector port), then a 4×4 dword transpose
// inside the lanes (8 shuffles). A full-register transpose would need 4 shuffles per output,
// all on the one shuffle port, which bounds the decoding of a panel.
template <int kChunks>
[[gnu::always_inline]] inline void transpose16(const uint8_t* const* rows, size_t off,
                                               __m512i* out) {
  for (int c = 0; c < kChunks; ++c) {
    __m512i x[4];
    for (int m = 0; m < 4; ++m) {
      const size_t at = off + 16 * static_cast<size_t>(c);
      x[m] = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[m] + at)));
      for (int q = 1; q < 4; ++q)
        x[m] = _mm512_inserti32x4(
            x[m], _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[4 * q + m] + at)), q);
    }
    const __m512i t0 = _mm512_unpacklo_epi32(x[0], x[1]);  // rows m=0,1: dwords 0, 1
    const __m512i t1 = _mm512_unpackhi_epi32(x[0], x[1]);  //             dwords 2, 3
    const __m512i t2 = _mm512_unpacklo_epi32(x[2], x[3]);
    const __m512i t3 = _mm512_unpackhi_epi32(x[2], x[3]);
    out[4 * c + 0] = _mm512_unpacklo_epi64(t0, t2);
    out[4 * c + 1] = _mm512_unpackhi_epi64(t0, t2);
    out[4 * c + 2] = _mm512_unpacklo_epi64(t1, t3);
    out[4 * c + 3] = _mm512_unpackhi_epi64(t1, t3);
  }
}

// vpshufb pattern that builds each dword from bytes b0..b3 of the same dword (-1: zero).
inline __m512i byte_pick(int b0, int b1, int b2, int b3) {
  int32_t d[4];
  for (int q = 0; q < 4; ++q) {
    const int b[4] = {b0, b1, b2, b3};
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k)
      v |= static_cast<uint32_t>(b[k] < 0 ? 0x80 : 4 * q + b[k]) << (8 * k);
    d[q] = static_cast<int32_t>(v);
  }
  return _mm512_set4_epi32(d[3], d[2], d[1], d[0]);
}

inline __m512i shift_left(__m512i x, int s) {
  return s >= 0 ? _mm512_slli_epi32(x, static_cast<unsigned>(s))
                : _mm512_srli_epi32(x, static_cast<unsigned>(-s));
}

// (a & c) | b, bit by bit.
constexpr int kAndOr = (0xF0 & 0xAA) | 0xCC;

// The 16 F16 values at rows[i] + off, as F32.
inline __m512 f16_field(const uint8_t* const* rows, size_t off) {
  alignas(32) uint16_t h[kPanel];
  for (int i = 0; i < kPanel; ++i) std::memcpy(&h[i], rows[i] + off, sizeof(uint16_t));
  return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(h)));
}

// d, dmin and the 6-bit scales and mins of Q4_K / Q5_K (get_scale_min_k4) from the first 16
// bytes of the blocks, transposed: x[0] = d | dmin << 16, x[1..3] = scales[0..11].
inline void decode_header_k4(const __m512i x[4], PanelK& p) {
  p.d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(x[0]));
  p.dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(x[0], 16)));
  const __m512i m6 = _mm512_set1_epi8(0x3f);
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i top2 = _mm512_set1_epi8(0x30);
  // Bytes of each row's dword: scales (or mins) of sub-blocks 0..3 and 4..7.
  const __m512i sc_lo = _mm512_and_si512(x[1], m6);
  const __m512i mn_lo = _mm512_and_si512(x[2], m6);
  const __m512i sc_hi = _mm512_ternarylogic_epi32(
      x[3], _mm512_and_si512(_mm512_srli_epi32(x[1], 2), top2), m4, kAndOr);
  const __m512i mn_hi = _mm512_ternarylogic_epi32(
      _mm512_srli_epi32(x[3], 4), _mm512_and_si512(_mm512_srli_epi32(x[2], 2), top2), m4, kAndOr);
  for (int j = 0; j < 4; ++j) {
    const __m512i pick = byte_pick(j, -1, -1, -1);
    p.scale[j] = _mm512_shuffle_epi8(sc_lo, pick);
    p.scale[4 + j] = _mm512_shuffle_epi8(sc_hi, pick);
  }
  for (int j = 0; j < 2; ++j) {
    const __m512i pick = byte_pick(2 * j, -1, 2 * j + 1, -1);
    p.mins[j] = _mm512_shuffle_epi8(mn_lo, pick);
    p.mins[2 + j] = _mm512_shuffle_epi8(mn_hi, pick);
  }
}

// ---------------------------------------------------------------------------------------
// Weight types. kGroups scale groups of kGroupDwords dwords (4 codes each); a group's dot
// product is summed in chunks of kChunkDwords, each multiplied by its scale either as an int16
// (vpdpwssd: the chunk's sum fits 16 bits) or as an int32 (vpmulld).

struct Q4K {
  using Block = BlockQ4_K;
  static constexpr int kGroups = 8;
  static constexpr int kGroupDwords = 8;
  static constexpr int kChunkDwords = 4;  // |Σ_16 q·a| <= 16·15·127 < 2^15
  static constexpr bool kMadd16 = true;
  static constexpr bool kMins = true;
  static constexpr bool kBias = false;
  static void decode(const uint8_t* const* rows, int64_t b, PanelK& p) {
    const size_t off = static_cast<size_t>(b) * sizeof(Block);
    __m512i hdr[4];
    transpose16<1>(rows, off, hdr);
    decode_header_k4(hdr, p);
    // qs[32·h + l]: element 64·h + l in the low nibble, 64·h + 32 + l in the high one.
    __m512i q[32];
    transpose16<8>(rows, off + 16, q);
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int k = 0; k < 32; ++k) {
      const int h = k / 8, l4 = k % 8;
      p.w[16 * h + l4] = _mm512_and_si512(q[k], m4);
      p.w[16 * h + 8 + l4] = _mm512_and_si512(_mm512_srli_epi32(q[k], 4), m4);
    }
  }
};

struct Q5K {
  using Block = BlockQ5_K;
  static constexpr int kGroups = 8;
  static constexpr int kGroupDwords = 8;
  static constexpr int kChunkDwords = 8;  // |Σ_32 q·a| <= 32·31·127: needs 32 bits
  static constexpr bool kMadd16 = false;
  static constexpr bool kMins = true;
  static constexpr bool kBias = false;
  static void decode(const uint8_t* const* rows, int64_t b, PanelK& p) {
    const size_t off = static_cast<size_t>(b) * sizeof(Block);
    __m512i hdr[4];
    transpose16<1>(rows, off, hdr);
    decode_header_k4(hdr, p);
    __m512i qh[8];
    transpose16<2>(rows, off + 16, qh);
    __m512i q[32];
    transpose16<8>(rows, off + 48, q);
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i bit4 = _mm512_set1_epi8(0x10);
    for (int k = 0; k < 32; ++k) {
      const int h = k / 8, l4 = k % 8;
      // Bit 4 of element 64·h + l is bit 2h of qh[l], of element 64·h + 32 + l bit 2h + 1.
      const __m512i hi_lo = _mm512_and_si512(shift_left(qh[l4], 4 - 2 * h), bit4);
      const __m512i hi_hi = _mm512_and_si512(shift_left(qh[l4], 3 - 2 * h), bit4);
      p.w[16 * h + l4] = _mm512_ternarylogic_epi32(q[k], hi_lo, m4, kAndOr);
      p.w[16 * h + 8 + l4] =
          _mm512_ternarylogic_epi32(_mm512_srli_epi32(q[k], 4), hi_hi, m4, kAndOr);
    }
  }
};

struct Q6K {
  using Block = BlockQ6_K;
  static constexpr int kGroups = 16;
  static constexpr int kGroupDwords = 4;
  static constexpr int kChunkDwords = 4;  // |Σ_16 (q-32)·a| <= 16·32·127: needs 17 bits
  static constexpr bool kMadd16 = false;
  static constexpr bool kMins = false;
  static constexpr bool kBias = true;  // each group's sum starts at -32·bsum
  static void decode(const uint8_t* const* rows, int64_t b, PanelK& p) {
    const size_t off = static_cast<size_t>(b) * sizeof(Block);
    __m512i ql[32], qh[16], sc[4];
    transpose16<8>(rows, off, ql);
    transpose16<4>(rows, off + 128, qh);
    transpose16<1>(rows, off + 192, sc);
    // Per half h of 128: ql[64h + l] holds the low nibbles of elements l, l + 64;
    // ql[64h + 32 + l] of l + 32, l + 96; qh[32h + l] their high bit pairs from bit 0 up.
    // Each code takes its low nibble from ql and bits 4-5 from qh, shifted into place with
    // the other bits already cleared (x & 0x33, x & 0xcc), so one select makes it.
    const __m512i nibble = _mm512_set1_epi8(0x0f);
    constexpr int kSelect = (0xF0 & 0xAA) | (0xCC & ~0xAA & 0xFF);  // c ? a : b
    for (int h = 0; h < 2; ++h)
      for (int l4 = 0; l4 < 8; ++l4) {
        const __m512i a = ql[16 * h + l4], c = ql[16 * h + 8 + l4], x = qh[8 * h + l4];
        const __m512i x02 = _mm512_and_si512(x, _mm512_set1_epi8(0x33));  // pairs 0 and 2
        const __m512i x13 = _mm512_and_si512(x, _mm512_set1_epi8(static_cast<char>(0xcc)));
        __m512i* w = p.w + 32 * h + l4;
        w[0] = _mm512_ternarylogic_epi32(a, _mm512_slli_epi32(x02, 4), nibble, kSelect);
        w[8] = _mm512_ternarylogic_epi32(c, _mm512_slli_epi32(x13, 2), nibble, kSelect);
        w[16] = _mm512_ternarylogic_epi32(_mm512_srli_epi32(a, 4), x02, nibble, kSelect);
        w[24] = _mm512_ternarylogic_epi32(_mm512_srli_epi32(c, 4), _mm512_srli_epi32(x13, 2),
                                          nibble, kSelect);
      }
    for (int g = 0; g < 16; ++g)
      p.scale[g] = _mm512_srai_epi32(
          _mm512_slli_epi32(sc[g / 4], static_cast<unsigned>(24 - 8 * (g % 4))), 24);
    p.d = f16_field(rows, off + offsetof(Block, d));
  }
};

// ---------------------------------------------------------------------------------------
// Token tiles.

inline __m512i broadcast_dword(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm512_set1_epi32(v);
}

// Super-blocks decoded once per token block into a per-thread buffer.
struct Prepared {
  const PanelK* blocks;  // super-blocks first, first + 1, ...
  int64_t first;
  const PanelK& block(int64_t b) const { return blocks[b - first]; }
};

// Rows of a panel, decoded one super-block at a time (GEMV: the rows stream from memory
// once), the super-blocks kAhead later requested meanwhile, then those of the next panel.
template <class Type>
struct Direct {
  const uint8_t* const* rows;  // [kPanel]
  const uint8_t* const* next;  // [n_next] rows of the next panel
  int n_next;
  int64_t nb;
  mutable PanelK tmp;  // deliberately left uninitialized: every field is written before use

  Direct(const uint8_t* const* rows_, const uint8_t* const* next_, int n_next_, int64_t nb_)
      : rows(rows_), next(next_), n_next(n_next_), nb(nb_) {}

  static void prefetch(const uint8_t* const* r, int n, int64_t b) {
    const size_t off = static_cast<size_t>(b) * sizeof(typename Type::Block);
    for (int i = 0; i < n; ++i)
      for (size_t k = 0; k < sizeof(typename Type::Block); k += 64)
        _mm_prefetch(reinterpret_cast<const char*>(r[i] + off + k), _MM_HINT_T0);
  }
  void decode(int64_t b, PanelK& p) const {
    if (b + kAhead < nb)
      prefetch(rows, kPanel, b + kAhead);
    else if (n_next > 0)
      prefetch(next, n_next, b + kAhead - nb);
    Type::decode(rows, b, p);
  }
  const PanelK& block(int64_t b) const {
    decode(b, tmp);
    return tmp;
  }
};

// out[t][i] = row p0+i · token t for NT tokens whose activation rows start at `act`.
// Super-blocks [b0, b1) of the panel: out[t][i] (row p0+i, token t) continues from its value
// (starts at 0 when b0 == 0); NT tokens whose activation rows start at `act`.
template <class Type, int NT, class Src>
void tile(const Src& src, int64_t b0, int64_t b1, const uint8_t* act, size_t act_bytes,
          float* out) {
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t)
    acc[t] = b0 == 0 ? _mm512_setzero_ps() : _mm512_load_ps(out + kPanel * t);
  for (int64_t b = b0; b < b1; ++b) {
    const PanelK& p = src.block(b);
    const ActK* a[NT];
    for (int t = 0; t < NT; ++t) a[t] = reinterpret_cast<const ActK*>(act + t * act_bytes) + b;
    __m512i isum[NT];
    for (int t = 0; t < NT; ++t) isum[t] = _mm512_setzero_si512();
    for (int g = 0; g < Type::kGroups; ++g) {
      const __m512i s = _mm512_load_si512(&p.scale[g]);
      for (int c = 0; c < Type::kGroupDwords; c += Type::kChunkDwords) {
        __m512i dot[NT];
        for (int t = 0; t < NT; ++t) {
          if constexpr (Type::kBias)
            dot[t] = _mm512_set1_epi32(a[t]->q6_bias[g]);
          else
            dot[t] = _mm512_setzero_si512();
        }
        for (int k = 0; k < Type::kChunkDwords; ++k) {
          const int kw = g * Type::kGroupDwords + c + k;
          const __m512i w = _mm512_load_si512(&p.w[kw]);
          for (int t = 0; t < NT; ++t)
            dot[t] = _mm512_dpbusd_epi32(dot[t], w, broadcast_dword(a[t]->q + 4 * kw));
        }
        for (int t = 0; t < NT; ++t)
          isum[t] = Type::kMadd16 ? _mm512_dpwssd_epi32(isum[t], dot[t], s)
                                  : _mm512_add_epi32(isum[t], _mm512_mullo_epi32(dot[t], s));
      }
    }
    const __m512 dw = _mm512_load_ps(&p.d);
    for (int t = 0; t < NT; ++t) {
      const __m512 da = _mm512_set1_ps(a[t]->d);
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(dw, da), acc[t]);
      if constexpr (Type::kMins) {
        __m512i msum = _mm512_setzero_si512();
        for (int j = 0; j < 4; ++j)
          msum = _mm512_dpwssd_epi32(msum, _mm512_load_si512(&p.mins[j]),
                                     broadcast_dword(a[t]->bsum32 + 2 * j));
        acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum),
                                  _mm512_mul_ps(_mm512_load_ps(&p.dmin), da), acc[t]);
      }
    }
  }
  for (int t = 0; t < NT; ++t) _mm512_store_ps(out + kPanel * t, acc[t]);
}

template <class Type, class Src>
void tile_n(const Src& src, int64_t b0, int64_t b1, const uint8_t* act, size_t act_bytes, int n,
            float* out) {
  static_assert(kTile == 8);
  switch (n) {
#define LOUPE_KQ_TILE(N)                              \
  case N:                                             \
    tile<Type, N>(src, b0, b1, act, act_bytes, out); \
    break;
    LOUPE_KQ_TILE(1)
    LOUPE_KQ_TILE(2)
    LOUPE_KQ_TILE(3)
    LOUPE_KQ_TILE(4)
    LOUPE_KQ_TILE(5)
    LOUPE_KQ_TILE(6)
    LOUPE_KQ_TILE(7)
    LOUPE_KQ_TILE(8)
#undef LOUPE_KQ_TILE
    default:
      break;
  }
}

template <class Type>
void panel_rows(const Matrix& w, const ActView& a, int64_t r0, int64_t r1, float* y,
                int64_t y_stride) {
  const int64_t nb = w.n_in / kQkK;
  thread_local std::vector<PanelK> prepared(kChunkBlocks);
  alignas(64) float out[kTokenBlock][kPanel];
  for (int64_t tb = 0; tb < a.n_tokens; tb += kTokenBlock) {
    const int64_t te = std::min<int64_t>(a.n_tokens, tb + kTokenBlock);
    for (int64_t p0 = r0; p0 < r1; p0 += kPanel) {
      const int n_rows = static_cast<int>(std::min<int64_t>(kPanel, r1 - p0));
      // A partial panel repeats its last row in the spare lanes (their results are dropped).
      const uint8_t* rows[kPanel];
      for (int i = 0; i < kPanel; ++i)
        rows[i] = w.data + static_cast<size_t>(p0 + std::min(i, n_rows - 1)) * w.row_stride;
      const uint8_t* next[kPanel];
      const int n_next = static_cast<int>(std::clamp<int64_t>(r1 - p0 - kPanel, 0, kPanel));
      for (int i = 0; i < n_next; ++i)
        next[i] = w.data + static_cast<size_t>(p0 + kPanel + i) * w.row_stride;
      const Direct<Type> direct(rows, next, n_next, nb);
      if (te - tb <= kTile) {  // one tile: decode in place, the rows stream once
        tile_n<Type>(direct, 0, nb, a.data + tb * a.row_bytes, a.row_bytes,
                     static_cast<int>(te - tb), &out[0][0]);
      } else {
        // Chunks of super-blocks decoded once and used by every tile while they sit in L1;
        // the tiles' accumulators wait in `out` between chunks (same operations, same bits).
        for (int64_t b0 = 0; b0 < nb; b0 += kChunkBlocks) {
          const int64_t b1 = std::min<int64_t>(nb, b0 + kChunkBlocks);
          for (int64_t b = b0; b < b1; ++b) direct.decode(b, prepared[b - b0]);
          const Prepared src{prepared.data(), b0};
          for (int64_t t = tb; t < te; t += kTile)
            tile_n<Type>(src, b0, b1, a.data + t * a.row_bytes, a.row_bytes,
                         static_cast<int>(std::min<int64_t>(kTile, te - t)), &out[t - tb][0]);
        }
      }
      for (int64_t t = tb; t < te; ++t)
        _mm512_mask_storeu_ps(y + t * y_stride + p0, static_cast<__mmask16>((1u << n_rows) - 1),
                              _mm512_load_ps(out[t - tb]));
    }
  }
}

template <class Type>
WeightKernel make_kernel() {
  WeightKernel k;
  k.act_row_bytes = &act_row_bytes;
  k.convert = &convert;
  k.rows = &panel_rows<Type>;
  k.row_align = kPanel;
  return k;
}

}  // namespace

WeightKernel avx512_kquant_kernel(DType type) {
  switch (type) {
    case DType::kQ4_K:
      return make_kernel<Q4K>();
    case DType::kQ5_K:
      return make_kernel<Q5K>();
    case DType::kQ6_K:
      return make_kernel<Q6K>();
    default:
      return {};
  }
}

}  // namespace loupe::kernels::isa

#endif  // __x86_64__
