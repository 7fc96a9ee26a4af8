#include "kernels/matmul.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string_view>
#include <vector>

#include "base/aligned.h"

#include "kernels/matmul_isa.h"
#include "simd/cpu.h"
#include "tensor/blocks.h"
#include "tensor/quant.h"

namespace loupe::kernels {
namespace {

// ---------------------------------------------------------------------------------------
// Half precision through a table, as ggml does on CPUs without a native conversion in
// its scalar paths; identical to fp16_to_fp32.
struct F16Table {
  float v[65536];
  F16Table() {
    for (uint32_t i = 0; i < 65536; ++i) v[i] = fp16_to_fp32(static_cast<uint16_t>(i));
  }
};
const F16Table& f16_table() {
  static const F16Table table;
  return table;
}

// How a weight type meets its activations.
enum class Path {
  kFloat,  // F32 / F16 / BF16 weights: F32 dot of (rounded) activations
  kQ8_0,   // 32-blocks with one scale, activations Q8_0
  kQ8_1,   // 32-blocks with scale and min, activations Q8_1
  kQ8_K,   // 256-super-blocks (K-quants, IQ4_XS), activations Q8_K
  kNone
};

Path path_of(DType t) {
  switch (t) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
      return Path::kFloat;
    case DType::kQ4_0:
    case DType::kQ5_0:
    case DType::kQ8_0:
    case DType::kIQ4_NL:
    case DType::kMXFP4:
      return Path::kQ8_0;
    case DType::kQ4_1:
    case DType::kQ5_1:
      return Path::kQ8_1;
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
    case DType::kIQ4_XS:
      return Path::kQ8_K;
    default:
      return Path::kNone;
  }
}

// One Q8_0 / Q8_1 activation block with its F16 scale (and d*sum) widened to F32.
struct ActQ8 {
  float d;
  float s;
  int8_t q[kQk];
};

// x86 ggml-cpu quantize_row_q8_0 / q8_1 (AVX): d = amax/127 stored as F16, but the codes
// use the multiplier 127/amax and round half to even (not ggml's scalar reference, which
// rounds half away from zero with 1/d). The sum of Q8_1 uses the F32 d.
void quantize_act_q8(const float* x, ActQ8* y, int64_t n, bool with_sum) {
  for (int64_t b = 0; b < n / kQk; ++b, x += kQk) {
    float amax = 0.0f;
    for (int j = 0; j < kQk; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < kQk; ++j) {
      const int v = static_cast<int>(std::nearbyint(x[j] * id));
      y[b].q[j] = static_cast<int8_t>(v);
      sum += v;
    }
    y[b].d = f16_table().v[fp32_to_fp16(d)];
    y[b].s = with_sum ? f16_table().v[fp32_to_fp16(d * static_cast<float>(sum))] : 0.0f;
  }
}

// Activations of one matmul converted to the weight's vec_dot type.
struct Activations {
  Path path = Path::kNone;
  int64_t n_in = 0;
  std::vector<float> f;        // kFloat: [n_tokens, n_in], values exactly representable
  std::vector<ActQ8> q8;       // kQ8_0/kQ8_1: [n_tokens, n_in/32]
  std::vector<BlockQ8_K> q8k;  // kQ8_K: [n_tokens, n_in/256]
};

void convert_row(DType wtype, const float* x, int64_t n, float* f, ActQ8* q8, BlockQ8_K* q8k) {
  switch (path_of(wtype)) {
    case Path::kFloat:
      if (wtype == DType::kF32) {
        std::memcpy(f, x, static_cast<size_t>(n) * sizeof(float));
      } else if (wtype == DType::kF16) {
        for (int64_t i = 0; i < n; ++i) f[i] = f16_table().v[fp32_to_fp16(x[i])];
      } else {
        for (int64_t i = 0; i < n; ++i) f[i] = bf16_to_fp32(fp32_to_bf16(x[i]));
      }
      break;
    case Path::kQ8_0:
      quantize_act_q8(x, q8, n, false);
      break;
    case Path::kQ8_1:
      quantize_act_q8(x, q8, n, true);
      break;
    case Path::kQ8_K:
      quantize_row_q8_k_ref(x, q8k, n);
      break;
    case Path::kNone:
      assert(false);
      break;
  }
}

void convert(DType wtype, const float* x, int64_t n_tokens, int64_t n_in, Activations& a) {
  a.path = path_of(wtype);
  a.n_in = n_in;
  if (a.path == Path::kFloat) a.f.resize(static_cast<size_t>(n_tokens * n_in));
  if (a.path == Path::kQ8_0 || a.path == Path::kQ8_1)
    a.q8.resize(static_cast<size_t>(n_tokens * n_in / kQk));
  if (a.path == Path::kQ8_K) a.q8k.resize(static_cast<size_t>(n_tokens * n_in / kQkK));
  for (int64_t t = 0; t < n_tokens; ++t)
    convert_row(wtype, x + t * n_in, n_in, a.f.data() + (a.path == Path::kFloat ? t * n_in : 0),
                a.q8.data() + (a.q8.empty() ? 0 : t * n_in / kQk),
                a.q8k.data() + (a.q8k.empty() ? 0 : t * n_in / kQkK));
}

// ---------------------------------------------------------------------------------------
// A weight row unpacked once into integer codes and per-block scales, then dotted with
// every token's activations. The codes are the exact integers of the format, so the
// integer sums equal ggml's; only the F32 combination across blocks is ordered by us.
struct DecodedRow {
  std::vector<float> f;     // kFloat: [n_in]
  std::vector<int8_t> q;    // [n_in] codes
  std::vector<float> d;     // kQ8_0/kQ8_1: per 32-block scale; kQ8_K: per super-block
  std::vector<float> m;     // kQ8_1: per block min; kQ8_K: per super-block dmin
  std::vector<int16_t> sc;  // kQ8_K: integer scale per 16 elements
  std::vector<int16_t> mn;  // kQ8_K: integer min per 16 elements (0 without mins)
};

float h2f(uint16_t h) {
  return f16_table().v[h];
}

// E8M0 scale halved (ggml_e8m0_to_fp32_half), since kMxfp4Values are doubled.
float e8m0_half(uint8_t e) {
  const uint32_t bits = e < 2 ? 0x00200000u << e : static_cast<uint32_t>(e - 1) << 23;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

void nibbles(const uint8_t* qs, const int8_t* table, int8_t* q) {
  for (int j = 0; j < kQk / 2; ++j) {
    q[j] = table[qs[j] & 0xf];
    q[j + kQk / 2] = table[qs[j] >> 4];
  }
}

constexpr int8_t kQ4Offset[16] = {-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7};
constexpr int8_t kQ4Plain[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

void q5_codes(const uint8_t* qs, const uint8_t* qh_bytes, int offset, int8_t* q) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, sizeof(qh));
  for (int j = 0; j < kQk / 2; ++j) {
    q[j] = static_cast<int8_t>(((qs[j] & 0xf) | (((qh >> j) & 1) << 4)) - offset);
    q[j + 16] = static_cast<int8_t>(((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - offset);
  }
}

void scale_min_k4(int j, const uint8_t* s, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

void decode_row(DType t, const uint8_t* row, int64_t n, DecodedRow& r) {
  const Path path = path_of(t);
  if (path == Path::kFloat) {
    r.f.resize(static_cast<size_t>(n));
    if (t == DType::kF32) {
      std::memcpy(r.f.data(), row, static_cast<size_t>(n) * sizeof(float));
    } else {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(row);
      if (t == DType::kF16) {
        for (int64_t i = 0; i < n; ++i) r.f[i] = h2f(h[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) {
          const uint32_t bits = static_cast<uint32_t>(h[i]) << 16;
          std::memcpy(&r.f[i], &bits, sizeof(float));
        }
      }
    }
    return;
  }
  r.q.resize(static_cast<size_t>(n));
  int8_t* q = r.q.data();
  if (path == Path::kQ8_0 || path == Path::kQ8_1) {
    const int64_t nb = n / kQk;
    r.d.resize(static_cast<size_t>(nb));
    r.m.resize(static_cast<size_t>(nb));
    for (int64_t b = 0; b < nb; ++b, q += kQk) {
      switch (t) {
        case DType::kQ4_0: {
          const auto* x = reinterpret_cast<const BlockQ4_0*>(row) + b;
          r.d[b] = h2f(x->d);
          nibbles(x->qs, kQ4Offset, q);
          break;
        }
        case DType::kQ4_1: {
          const auto* x = reinterpret_cast<const BlockQ4_1*>(row) + b;
          r.d[b] = h2f(x->d);
          r.m[b] = h2f(x->m);
          nibbles(x->qs, kQ4Plain, q);
          break;
        }
        case DType::kQ5_0: {
          const auto* x = reinterpret_cast<const BlockQ5_0*>(row) + b;
          r.d[b] = h2f(x->d);
          q5_codes(x->qs, x->qh, 16, q);
          break;
        }
        case DType::kQ5_1: {
          const auto* x = reinterpret_cast<const BlockQ5_1*>(row) + b;
          r.d[b] = h2f(x->d);
          r.m[b] = h2f(x->m);
          q5_codes(x->qs, x->qh, 0, q);
          break;
        }
        case DType::kQ8_0: {
          const auto* x = reinterpret_cast<const BlockQ8_0*>(row) + b;
          r.d[b] = h2f(x->d);
          std::memcpy(q, x->qs, kQk);
          break;
        }
        case DType::kIQ4_NL: {
          const auto* x = reinterpret_cast<const BlockIq4Nl*>(row) + b;
          r.d[b] = h2f(x->d);
          nibbles(x->qs, kIq4nlValues, q);
          break;
        }
        case DType::kMXFP4: {
          const auto* x = reinterpret_cast<const BlockMxfp4*>(row) + b;
          r.d[b] = e8m0_half(x->e);
          nibbles(x->qs, kMxfp4Values, q);
          break;
        }
        default:
          assert(false);
      }
    }
    return;
  }
  // Super-blocks of 256 against Q8_K.
  const int64_t nb = n / kQkK;
  r.d.resize(static_cast<size_t>(nb));
  r.m.resize(static_cast<size_t>(nb));
  r.sc.resize(static_cast<size_t>(n / 16));
  r.mn.resize(static_cast<size_t>(n / 16));
  for (int64_t b = 0; b < nb; ++b, q += kQkK) {
    int16_t* sc = r.sc.data() + b * 16;
    int16_t* mn = r.mn.data() + b * 16;
    std::fill(mn, mn + 16, 0);
    switch (t) {
      case DType::kQ2_K: {
        const auto* x = reinterpret_cast<const BlockQ2_K*>(row) + b;
        r.d[b] = h2f(x->d);
        r.m[b] = h2f(x->dmin);
        for (int e = 0; e < kQkK; ++e)
          q[e] =
              static_cast<int8_t>((x->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3);
        for (int g = 0; g < 16; ++g) {
          sc[g] = x->scales[g] & 0xf;
          mn[g] = x->scales[g] >> 4;
        }
        break;
      }
      case DType::kQ3_K: {
        const auto* x = reinterpret_cast<const BlockQ3_K*>(row) + b;
        r.d[b] = h2f(x->d);
        r.m[b] = 0.0f;
        for (int e = 0; e < kQkK; ++e) {
          const int low = (x->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
          const int high = (x->hmask[e % 32] >> (e / 32)) & 1;
          q[e] = static_cast<int8_t>(low - (high ? 0 : 4));
        }
        for (int g = 0; g < 16; ++g) {
          const int low = g < 8 ? (x->scales[g] & 0xf) : (x->scales[g - 8] >> 4);
          const int high = (x->scales[8 + g % 4] >> (2 * (g / 4))) & 3;
          sc[g] = static_cast<int16_t>((low | (high << 4)) - 32);
        }
        break;
      }
      case DType::kQ4_K:
      case DType::kQ5_K: {
        const bool five = t == DType::kQ5_K;
        const uint8_t* scales = five ? reinterpret_cast<const BlockQ5_K*>(row)[b].scales
                                     : reinterpret_cast<const BlockQ4_K*>(row)[b].scales;
        const uint8_t* qs = five ? reinterpret_cast<const BlockQ5_K*>(row)[b].qs
                                 : reinterpret_cast<const BlockQ4_K*>(row)[b].qs;
        const uint8_t* qh = five ? reinterpret_cast<const BlockQ5_K*>(row)[b].qh : nullptr;
        const uint16_t d = five ? reinterpret_cast<const BlockQ5_K*>(row)[b].d
                                : reinterpret_cast<const BlockQ4_K*>(row)[b].d;
        const uint16_t dmin = five ? reinterpret_cast<const BlockQ5_K*>(row)[b].dmin
                                   : reinterpret_cast<const BlockQ4_K*>(row)[b].dmin;
        r.d[b] = h2f(d);
        r.m[b] = h2f(dmin);
        for (int j = 0; j < 8; ++j) {
          int s, m;
          scale_min_k4(j, scales, &s, &m);
          sc[2 * j] = sc[2 * j + 1] = static_cast<int16_t>(s);
          mn[2 * j] = mn[2 * j + 1] = static_cast<int16_t>(m);
          const uint8_t* src = qs + 32 * (j / 2);
          const int shift = 4 * (j % 2);
          for (int l = 0; l < 32; ++l) {
            int code = (src[l] >> shift) & 0xf;
            if (five) code |= ((qh[l] >> j) & 1) << 4;
            q[32 * j + l] = static_cast<int8_t>(code);
          }
        }
        break;
      }
      case DType::kQ6_K: {
        const auto* x = reinterpret_cast<const BlockQ6_K*>(row) + b;
        r.d[b] = h2f(x->d);
        r.m[b] = 0.0f;
        for (int e = 0; e < kQkK; ++e) {
          const int h = e / 128;
          const int rr = e % 128;
          const int l = rr % 32;
          const int quarter = rr / 32;
          const int low = (x->ql[64 * h + 32 * (quarter % 2) + l] >> (4 * (quarter / 2))) & 0xf;
          const int high = (x->qh[32 * h + l] >> (2 * quarter)) & 3;
          q[e] = static_cast<int8_t>((low | (high << 4)) - 32);
        }
        for (int g = 0; g < 16; ++g) sc[g] = x->scales[g];
        break;
      }
      case DType::kIQ4_XS: {
        const auto* x = reinterpret_cast<const BlockIq4Xs*>(row) + b;
        r.d[b] = h2f(x->d);
        r.m[b] = 0.0f;
        for (int ib = 0; ib < 8; ++ib) {
          const int ls = ((x->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf) |
                         (((x->scales_h >> (2 * ib)) & 3) << 4);
          sc[2 * ib] = sc[2 * ib + 1] = static_cast<int16_t>(ls - 32);
          nibbles(x->qs + 16 * ib, kIq4nlValues, q + 32 * ib);
        }
        break;
      }
      default:
        assert(false);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Dot products of a decoded row with one token's converted activations.

float dot_float(const float* w, const float* a, int64_t n) {
  // Eight independent partial sums (vectorizable without reassociation), then a fixed tree.
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += w[i + k] * a[i + k];
  for (int k = 0; i < n; ++i, ++k) acc[k] += w[i] * a[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

inline int32_t idot32(const int8_t* x, const int8_t* y) {
  int32_t s = 0;
  for (int j = 0; j < 32; ++j) s += static_cast<int32_t>(x[j]) * static_cast<int32_t>(y[j]);
  return s;
}

inline int32_t idot16(const int8_t* x, const int8_t* y) {
  int32_t s = 0;
  for (int j = 0; j < 16; ++j) s += static_cast<int32_t>(x[j]) * static_cast<int32_t>(y[j]);
  return s;
}

float dot_q8_0(const DecodedRow& w, const ActQ8* a, int64_t nb) {
  float sum = 0.0f;
  for (int64_t b = 0; b < nb; ++b)
    sum += static_cast<float>(idot32(w.q.data() + b * kQk, a[b].q)) * (w.d[b] * a[b].d);
  return sum;
}

float dot_q8_1(const DecodedRow& w, const ActQ8* a, int64_t nb) {
  float sum = 0.0f;
  for (int64_t b = 0; b < nb; ++b)
    sum += (w.d[b] * a[b].d) * static_cast<float>(idot32(w.q.data() + b * kQk, a[b].q)) +
           w.m[b] * a[b].s;
  return sum;
}

float dot_q8_k(const DecodedRow& w, const BlockQ8_K* a, int64_t nb) {
  float sum = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const int8_t* q = w.q.data() + b * kQkK;
    const int16_t* sc = w.sc.data() + b * 16;
    const int16_t* mn = w.mn.data() + b * 16;
    int32_t isum = 0;
    int32_t msum = 0;
    for (int g = 0; g < 16; ++g) {
      isum += sc[g] * idot16(q + 16 * g, a[b].qs + 16 * g);
      msum += mn[g] * a[b].bsums[g];
    }
    sum +=
        (w.d[b] * a[b].d) * static_cast<float>(isum) - (w.m[b] * a[b].d) * static_cast<float>(msum);
  }
  return sum;
}

float dot(const DecodedRow& w, const Activations& a, int64_t t) {
  const int64_t n = a.n_in;
  switch (a.path) {
    case Path::kFloat:
      return dot_float(w.f.data(), a.f.data() + t * n, n);
    case Path::kQ8_0:
      return dot_q8_0(w, a.q8.data() + t * (n / kQk), n / kQk);
    case Path::kQ8_1:
      return dot_q8_1(w, a.q8.data() + t * (n / kQk), n / kQk);
    case Path::kQ8_K:
      return dot_q8_k(w, a.q8k.data() + t * (n / kQkK), n / kQkK);
    case Path::kNone:
      break;
  }
  assert(false);
  return 0.0f;
}

}  // namespace

float f16_to_f32(uint16_t h) {
  return f16_table().v[h];
}

void quantize_row_q8_0_cpu(const float* x, BlockQ8_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kQk; ++b, x += kQk) {
    float amax = 0.0f;
    for (int j = 0; j < kQk; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    for (int j = 0; j < kQk; ++j) y[b].qs[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
    y[b].d = fp32_to_fp16(amax / 127.f);
  }
}

DType vec_dot_type(DType weight) {
  switch (path_of(weight)) {
    case Path::kFloat:
      return weight;
    case Path::kQ8_0:
      return DType::kQ8_0;
    case Path::kQ8_1:
      return DType::kQ8_1;
    case Path::kQ8_K:
      return DType::kQ8_K;
    case Path::kNone:
      break;
  }
  return DType::kCount;
}

bool matmul_supports(DType weight) {
  return path_of(weight) != Path::kNone;
}

namespace {

// The scalar twin: every row decoded to integer codes once, dotted with each token.
void matmul_scalar(ThreadPool& pool, const Matrix& w, const float* x, int64_t n_tokens, float* y,
                   int64_t y_stride) {
  Activations a;
  convert(w.type, x, n_tokens, w.n_in, a);
  // Chunks of at least ~64K multiply-adds keep the pool's hand-off cheap.
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, w.n_in * n_tokens));
  pool.parallel_for(w.n_out, grain, [&](int64_t begin, int64_t end) {
    thread_local DecodedRow row;
    for (int64_t r = begin; r < end; ++r) {
      decode_row(w.type, w.data + static_cast<size_t>(r) * w.row_stride, w.n_in, row);
      for (int64_t t = 0; t < n_tokens; ++t) y[t * y_stride + r] = dot(row, a, t);
    }
  });
}

isa::WeightKernel fast_kernel(DType type) {
  switch (simd::active_isa()) {
    case simd::Isa::kAvx512:
      return isa::avx512_kernel(type);
    case simd::Isa::kAvx2:
      return isa::avx2_kernel(type);
    default:
      return {};
  }
}


// Registered packed ranges: source begin -> (source end, packed copy). The packed layout
// has exactly the source's byte count, so a slice of a registered tensor (one expert of a
// 3-D tensor, starting on a panel boundary) is found at the same offset in the copy.
struct PackedRange {
  const uint8_t* end = nullptr;
  const uint8_t* packed = nullptr;
  size_t granule = 1;  // bytes of one panel: a slice must start on one to use the copy
};
// The registry outlives every PackedWeights: models held in static objects are destroyed at
// exit in any order relative to a function-local static, so it is never destroyed.
struct PackedRegistry {
  std::shared_mutex mutex;
  std::map<const uint8_t*, PackedRange> ranges;
};
PackedRegistry& registry() {
  static PackedRegistry* r = new PackedRegistry;
  return *r;
}

const uint8_t* find_packed(const Matrix& w) {
  std::shared_lock<std::shared_mutex> lock(registry().mutex);
  const auto& ranges = registry().ranges;
  if (ranges.empty()) return nullptr;
  auto it = ranges.upper_bound(w.data);
  if (it == ranges.begin()) return nullptr;
  --it;
  const size_t bytes = w.row_stride * static_cast<size_t>(w.n_out);
  const size_t offset = static_cast<size_t>(w.data - it->first);
  if (w.data + bytes > it->second.end || offset % it->second.granule != 0) return nullptr;
  return it->second.packed + offset;
}

}  // namespace

struct PackedWeights::Block {
  AlignedPtr<uint8_t> bytes;
};

bool PackedWeights::disabled() {
  const char* e = std::getenv("LOUPE_NO_REPACK");
  return e != nullptr && std::string_view(e) == "1";
}

size_t PackedWeights::add(const Matrix& w) {
  if (disabled() || !matmul_supports(w.type)) return 0;
  const isa::WeightKernel k = fast_kernel(w.type);
  if (!k || k.can_pack == nullptr || !k.can_pack(w)) return 0;
  const size_t n = w.row_stride * static_cast<size_t>(w.n_out);
  auto* b = new Block{aligned_alloc_array<uint8_t>(n)};
  k.pack(w, b->bytes.get());
  {
    std::unique_lock<std::shared_mutex> lock(registry().mutex);
    registry().ranges[w.data] = {w.data + n, b->bytes.get(),
                               w.row_stride * static_cast<size_t>(std::max<int64_t>(1, k.row_align))};
  }
  std::lock_guard<std::mutex> lock(mutex_);
  blocks_.emplace_back(w.data, b);
  bytes_ += n;
  return n;
}

PackedWeights::~PackedWeights() {
  std::unique_lock<std::shared_mutex> lock(registry().mutex);
  for (auto& [src, b] : blocks_) {
    registry().ranges.erase(src);
    delete b;
  }
}

void matmul(ThreadPool& pool, const Matrix& w_in, const float* x, int64_t n_tokens, float* y,
            int64_t y_stride) {
  assert(matmul_supports(w_in.type));
  if (y_stride == 0) y_stride = w_in.n_out;
  if (n_tokens <= 0 || w_in.n_out <= 0) return;
  const isa::WeightKernel k = fast_kernel(w_in.type);
  if (!k) {
    matmul_scalar(pool, w_in, x, n_tokens, y, y_stride);
    return;
  }
  Matrix w = w_in;
  if (k.pack != nullptr && w.packed == nullptr) w.packed = find_packed(w);
  // Activations converted once per matmul (per token row, so any batch converts a token
  // the same way), then every output row against them.
  thread_local std::vector<uint8_t> act;
  const size_t row_bytes = k.act_row_bytes(w.n_in);
  if (act.size() < row_bytes * static_cast<size_t>(n_tokens))
    act.resize(row_bytes * static_cast<size_t>(n_tokens));
  uint8_t* act_data = act.data();
  const int64_t n_in = w.n_in;
  pool.parallel_for(n_tokens, std::max<int64_t>(1, 16384 / n_in), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t)
      k.convert(x + t * n_in, n_in, act_data + static_cast<size_t>(t) * row_bytes);
  });
  const isa::ActView a{act_data, row_bytes, n_tokens};
  // One token: chunks of ~256K multiply-adds (long contiguous streams per thread read faster
  // than short ones). A batch: row blocks small enough to balance the threads, large enough
  // that a block of tokens' activations is reused from L2.
  const int64_t grain =
      n_tokens < 8
          ? std::max<int64_t>(1, 262144 / std::max<int64_t>(1, n_in * n_tokens))
          : std::clamp<int64_t>(w.n_out / (4 * pool.n_threads()), 1, 32);
  const int64_t align = std::max<int64_t>(1, k.row_align);
  const int64_t n_units = (w.n_out + align - 1) / align;
  pool.parallel_for(n_units, std::max<int64_t>(1, grain / align), [&](int64_t begin, int64_t end) {
    k.rows(w, a, begin * align, std::min(w.n_out, end * align), y, y_stride);
  });
}

float matvec_row_ref(const Matrix& w, int64_t r, const float* x) {
  // Independent of the unpacking above: both sides go through the tensor module's
  // reference dequantizers and are multiplied in double.
  const int64_t n = w.n_in;
  std::vector<float> wf(static_cast<size_t>(n)), af(static_cast<size_t>(n));
  dequantize_row_ref(w.type, w.data + static_cast<size_t>(r) * w.row_stride, wf.data(), n);
  const DType vt = vec_dot_type(w.type);
  if (vt == DType::kF32) {
    std::memcpy(af.data(), x, static_cast<size_t>(n) * sizeof(float));
  } else if (vt == DType::kQ8_0 || vt == DType::kQ8_1) {
    std::vector<ActQ8> q(static_cast<size_t>(n / kQk));
    quantize_act_q8(x, q.data(), n, true);
    for (int64_t i = 0; i < n; ++i) af[i] = q[i / kQk].d * q[i / kQk].q[i % kQk];
    if (vt == DType::kQ8_1) {
      // Q8_1 carries the block sum as an F16 s; the weight's min meets that, not the exact sum.
      double correction = 0;
      const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_stride;
      const size_t block_bytes = dtype_traits(w.type).type_size;
      for (int64_t b = 0; b < n / kQk; ++b) {
        uint16_t m;
        std::memcpy(&m, row + b * block_bytes + 2, sizeof(m));  // Q4_1/Q5_1: d, then m
        double exact = 0;
        for (int j = 0; j < kQk; ++j) exact += static_cast<double>(q[b].d) * q[b].q[j];
        correction += static_cast<double>(h2f(m)) * (q[b].s - exact);
      }
      double s = correction;
      for (int64_t i = 0; i < n; ++i) s += static_cast<double>(wf[i]) * af[i];
      return static_cast<float>(s);
    }
  } else {
    std::vector<uint8_t> buf(dtype_row_size(vt, n));
    quantize_row_ref(vt, x, buf.data(), n);
    dequantize_row_ref(vt, buf.data(), af.data(), n);
  }
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(wf[i]) * af[i];
  return static_cast<float>(s);
}

}  // namespace loupe::kernels
