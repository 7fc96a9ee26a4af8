// AVX-512 kernels for F32 / F16 / BF16 weights (GEMV for generation, GEMM for prompts).
// Returns an empty WeightKernel for other types; avx512_kernel (matmul_avx512.cpp) then
// uses the shared x86 kernels.
//
// One summation order per output y[t, r], whatever the tile: 16 lanes over k, lane j
// accumulating w[r, k]·x[t, k] for k ≡ j (mod 16) in one FMA chain from k = 0 upwards
// (the activation row is zero-padded to a multiple of 16 and the weights' last partial
// vector is a masked load, so the tail is one more step of the same chain), then the
// halving tree of reduce16. Tiles only choose how many such chains share a loaded
// vector: a GEMV streams 8 rows per pass; a GEMM holds 2 rows × 12 tokens (24 zmm
// accumulators), so each converted weight vector feeds 12 FMAs and each activation
// vector 2, and walks k in chunks so the tile's activations stay in L1 while it sweeps a
// block of rows (partial accumulators wait in a per-thread scratch).
//
// BF16 and F16 weights are widened to F32 in registers (a shift, vcvtph2ps) and multiplied
// with FMA: on the CPUs this targets, vdpbf16ps retires half the F32 FMA rate, and F32
// products of BF16 / F16 values are exact, so the result equals ggml's up to the order of
// the F32 sums.
#include "kernels/matmul_isa.h"

// Other targets build this file empty-handed: the level is never selected there.
#if !defined(__x86_64__)
namespace loupe::kernels::isa {
WeightKernel avx512_float_kernel(DType) {
  return {};
}
}  // namespace loupe::kernels::isa
#else
// gcc 12's 512-bit intrinsics start from _mm512_undefined_*(), which -Wmaybe-uninitialized
// reports inside the headers (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <utility>

namespace loupe::kernels::isa {
namespace {

constexpr int kLanes = 16;
constexpr int kStreamRows = 8;    // GEMV rows per pass: 8 independent chains per token
constexpr int kTileRows = 2;      // GEMM register tile: rows ...
constexpr int kTileTokens = 12;   // ... × tokens (24 accumulators of the 32 zmm)
constexpr int kChunkSteps = 32;   // 16-value steps per k chunk: 12 tokens' chunk is 24 KiB
constexpr int kBlockRows = 64;    // rows swept per chunk (their partial sums: 48 KiB)
constexpr int kBlockTokens = 48;  // tokens whose activations stay in L2 across row blocks

int64_t padded(int64_t n) {
  return (n + kLanes - 1) / kLanes * kLanes;
}

__mmask16 tail_mask(int64_t n) {
  return static_cast<__mmask16>((1u << (n % kLanes)) - 1);
}

// ---------------------------------------------------------------------------------------
// Activations: one row [padded(n_in)] of F32 per token, rounded to the weight's vec_dot
// type (ggml converts activations to F16 / BF16 for those weights), zeros after n_in.

size_t act_row_bytes(int64_t n) {
  return static_cast<size_t>(padded(n)) * sizeof(float);
}

template <class Round>
void convert_with(const float* x, int64_t n, uint8_t* out, Round round) {
  float* y = reinterpret_cast<float*>(out);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) _mm512_storeu_ps(y + i, round(_mm512_loadu_ps(x + i)));
  if (i < n) _mm512_storeu_ps(y + i, round(_mm512_maskz_loadu_ps(tail_mask(n), x + i)));
}

void convert_f32(const float* x, int64_t n, uint8_t* out) {
  convert_with(x, n, out, [](__m512 v) { return v; });
}

void convert_f16(const float* x, int64_t n, uint8_t* out) {
  convert_with(x, n, out, [](__m512 v) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  });
}

// fp32_to_bf16 of the tensor module (round to nearest even; NaN truncated, kept quiet),
// widened back to F32.
void convert_bf16(const float* x, int64_t n, uint8_t* out) {
  convert_with(x, n, out, [](__m512 v) {
    const __m512i bits = _mm512_castps_si512(v);
    const __m512i high = _mm512_srli_epi32(bits, 16);
    const __m512i lsb = _mm512_and_si512(high, _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7fff)), lsb), 16);
    const __m512i quiet = _mm512_or_si512(high, _mm512_set1_epi32(64));
    const __m512i h =
        _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), rounded, quiet);
    return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
  });
}

// ---------------------------------------------------------------------------------------
// Weights: 16 values of a row from element k, widened to F32 (tail: the first `m` lanes).

struct LoadF32 {
  static __m512 load(const uint8_t* row, int64_t k) {
    return _mm512_loadu_ps(row + k * sizeof(float));
  }
  static __m512 load_tail(const uint8_t* row, int64_t k, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, row + k * sizeof(float));
  }
};

struct LoadF16 {
  static __m512 load(const uint8_t* row, int64_t k) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k)));
  }
  static __m512 load_tail(const uint8_t* row, int64_t k, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * k));
  }
};

struct LoadBF16 {
  static __m512 widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static __m512 load(const uint8_t* row, int64_t k) {
    return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k)));
  }
  static __m512 load_tail(const uint8_t* row, int64_t k, __mmask16 m) {
    return widen(_mm256_maskz_loadu_epi16(m, row + 2 * k));
  }
};

// The fixed tree every output ends with: lanes j and j+8, then j and j+4, j and j+2, 0 and 1.
inline float reduce16(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

// Without tuning for a specific CPU, gcc folds the activation load into each FMA that
// uses it (NR loads instead of one): the loop then runs at half speed, bound by loads.
inline void in_register(__m512& v) {
  asm("" : "+v"(v));
}

// Where a tile reads and writes.
struct TileArgs {
  const uint8_t* w;  // first row of the tile: [NR][w_stride] bytes
  size_t w_stride;
  const float* x;  // first token of the tile from step s0: [NT][x_stride]
  size_t x_stride;
  int64_t n_in;
  int64_t s0, s1;   // 16-value steps [s0, s1) of this pass, of padded(n_in) / 16
  __m512* partial;  // [NR * NT] sums carried between passes (unused when one pass)
  float* y;         // y[t * y_stride + r] for the tile's first token and row
  int64_t y_stride;
};

// NR rows × NT tokens over steps [s0, s1): starts from zero at step 0 (else from
// `partial`), ends with reduce16 into y after the last step (else back to `partial`).
// kXStride: the activations' row stride when fixed at compile time (the GEMM's packed
// chunk; constant offsets leave the general registers free), 0 for p.x_stride.
template <class L, int NR, int NT, int64_t kXStride>
void tile(const TileArgs& p) {
  __m512 acc[NR][NT];
  if (p.s0 == 0) {
#pragma GCC unroll 32
    for (int i = 0; i < NR * NT; ++i) acc[i / NT][i % NT] = _mm512_setzero_ps();
  } else {
#pragma GCC unroll 32
    for (int i = 0; i < NR * NT; ++i) acc[i / NT][i % NT] = _mm512_load_ps(&p.partial[i]);
  }
  const int64_t full = p.n_in / kLanes;
  const int64_t n_steps = (p.n_in + kLanes - 1) / kLanes;
  const int64_t s_full = std::min(p.s1, full);
  const uint8_t* w = p.w;
  const float* x = p.x;
  const int64_t x_stride = kXStride != 0 ? kXStride : static_cast<int64_t>(p.x_stride);
  for (int64_t s = p.s0; s < s_full; ++s) {
    __m512 wv[NR];
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r) wv[r] = L::load(w + r * p.w_stride, s * kLanes);
#pragma GCC unroll 16
    for (int t = 0; t < NT; ++t) {
      __m512 xv = _mm512_loadu_ps(x + t * x_stride + (s - p.s0) * kLanes);
      in_register(xv);
#pragma GCC unroll 16
      for (int r = 0; r < NR; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  if (p.s1 > full) {  // the partial last vector: masked weights, zero-padded activations
    const __mmask16 m = tail_mask(p.n_in);
    __m512 wv[NR];
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r) wv[r] = L::load_tail(w + r * p.w_stride, full * kLanes, m);
#pragma GCC unroll 16
    for (int t = 0; t < NT; ++t) {
      const __m512 xv = _mm512_loadu_ps(x + t * x_stride + (full - p.s0) * kLanes);
#pragma GCC unroll 16
      for (int r = 0; r < NR; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  if (p.s1 == n_steps) {
#pragma GCC unroll 32
    for (int i = 0; i < NR * NT; ++i)
      p.y[(i % NT) * p.y_stride + i / NT] = reduce16(acc[i / NT][i % NT]);
  } else {
#pragma GCC unroll 32
    for (int i = 0; i < NR * NT; ++i) _mm512_store_ps(&p.partial[i], acc[i / NT][i % NT]);
  }
}

using TileFn = void (*)(const TileArgs&);

template <class L, int NR, int64_t kXStride, size_t... I>
constexpr std::array<TileFn, sizeof...(I)> tiles_for(std::index_sequence<I...>) {
  return {&tile<L, NR, static_cast<int>(I) + 1, kXStride>...};
}

// ---------------------------------------------------------------------------------------

// Rows [r0, r1) in groups of NR for NT tokens (a GEMV and its few-token kin), one pass over k.
template <class L, int NR, int NT>
void stream(const Matrix& w, const float* x, size_t x_stride, int64_t r0, int64_t r1, float* y,
            int64_t y_stride) {
  const int64_t n_steps = padded(w.n_in) / kLanes;
  int64_t r = r0;
  for (; r + NR <= r1; r += NR)
    tile<L, NR, NT, 0>({w.data + static_cast<size_t>(r) * w.row_stride, w.row_stride, x, x_stride,
                        w.n_in, 0, n_steps, nullptr, y + r, y_stride});
  for (; r < r1; ++r)
    tile<L, 1, NT, 0>({w.data + static_cast<size_t>(r) * w.row_stride, w.row_stride, x, x_stride,
                       w.n_in, 0, n_steps, nullptr, y + r, y_stride});
}

// Per-thread buffers of the GEMM (on the heap: most threads never multiply a batch).
struct alignas(64) GemmScratch {
  __m512 partial[kBlockRows * kTileTokens];         // [kBlockRows][kTileTokens] lane sums
  float chunk[kTileTokens * kChunkSteps * kLanes];  // [kTileTokens][kChunkSteps * 16]
};

template <class L>
void rows(const Matrix& w, const ActView& a, int64_t r0, int64_t r1, float* y, int64_t y_stride) {
  const float* x = reinterpret_cast<const float*>(a.data);  // [n_tokens][x_stride]
  const size_t x_stride = a.row_bytes / sizeof(float);
  switch (a.n_tokens) {  // generation: rows stream from memory once, 8 chains in flight
    case 1:
      return stream<L, kStreamRows, 1>(w, x, x_stride, r0, r1, y, y_stride);
    case 2:
      return stream<L, kStreamRows, 2>(w, x, x_stride, r0, r1, y, y_stride);
    case 3:  // 18 accumulators and 6 weight vectors fit the 32 registers
      return stream<L, 6, 3>(w, x, x_stride, r0, r1, y, y_stride);
    default:
      break;
  }
  static constexpr auto pair =
      tiles_for<L, 2, kChunkSteps * kLanes>(std::make_index_sequence<kTileTokens>());
  static constexpr auto single =
      tiles_for<L, 1, kChunkSteps * kLanes>(std::make_index_sequence<kTileTokens>());
  thread_local std::unique_ptr<GemmScratch> scratch;
  if (!scratch) scratch = std::make_unique<GemmScratch>();
  __m512* partial = scratch->partial;
  float* chunk = scratch->chunk;
  const int64_t n_steps = padded(w.n_in) / kLanes;
  for (int64_t tb = 0; tb < a.n_tokens; tb += kBlockTokens) {
    const int64_t te = std::min<int64_t>(a.n_tokens, tb + kBlockTokens);
    for (int64_t rb = r0; rb < r1; rb += kBlockRows) {
      const int64_t re = std::min<int64_t>(r1, rb + kBlockRows);
      for (int64_t t = tb; t < te; t += kTileTokens) {
        const int nt = static_cast<int>(std::min<int64_t>(kTileTokens, te - t));
        // One pass at least, so that n_in = 0 still writes its zeros.
        for (int64_t s = 0; s == 0 || s < n_steps; s += kChunkSteps) {
          const int64_t se = std::min<int64_t>(n_steps, s + kChunkSteps);
          // The tile's activation chunk, copied to an aligned block: no split loads, and
          // rows 2 KiB apart do not contend for the same L1 sets as n_in = 2^k rows would.
          for (int j = 0; j < nt; ++j)
            for (int64_t q = s; q < se; ++q)
              _mm512_store_ps(&chunk[(j * kChunkSteps + q - s) * kLanes],
                              _mm512_loadu_ps(x + (t + j) * x_stride + q * kLanes));
          for (int64_t r = rb; r < re; r += kTileRows) {
            const TileArgs p{w.data + static_cast<size_t>(r) * w.row_stride,
                             w.row_stride,
                             chunk,
                             kChunkSteps * kLanes,
                             w.n_in,
                             s,
                             se,
                             &partial[(r - rb) * kTileTokens],
                             y + t * y_stride + r,
                             y_stride};
            (re - r >= kTileRows ? pair : single)[nt - 1](p);
          }
        }
      }
    }
  }
}

template <class L>
WeightKernel make(void (*convert)(const float*, int64_t, uint8_t*)) {
  WeightKernel k;
  k.act_row_bytes = &act_row_bytes;
  k.convert = convert;
  k.rows = &rows<L>;
  // The driver's row ranges then hold whole row blocks: a GEMM call reads every token's
  // activations once, so a few long calls read them less often than many short ones.
  k.row_align = kBlockRows;
  return k;
}

}  // namespace

WeightKernel avx512_float_kernel(DType type) {
  switch (type) {
    case DType::kF32:
      return make<LoadF32>(&convert_f32);
    case DType::kF16:
      return make<LoadF16>(&convert_f16);
    case DType::kBF16:
      return make<LoadBF16>(&convert_bf16);
    default:
      return {};
  }
}

}  // namespace loupe::kernels::isa

#endif  // __x86_64__
