// Half-precision conversions and the type dispatch of the reference (de)quantizers.
#include "tensor/quant.h"

#include <bit>
#include <cassert>
#include <cstdlib>
#include <cstring>

namespace loupe {

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ff;
  if (exponent == 0x1f) {  // inf, or NaN keeping its payload but quiet (as ggml's F32 math)
    const uint32_t quiet = mantissa ? 0x400000u : 0;
    return std::bit_cast<float>(sign | 0x7f800000u | quiet | (mantissa << 13));
  }
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in F32
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(magnitude));
  }
  return std::bit_cast<float>(sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13));
}

// IEEE round-to-nearest-even, as ggml's ggml_compute_fp32_to_fp16 (and F16C's
// _cvtss_sh(x, 0) for non-NaN input). NaN becomes the quiet NaN 0x7e00 with the input's sign,
// as ggml's portable path does; overflow (>= 65520) becomes infinity.
uint16_t fp32_to_fp16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return sign | 0x7e00;
  if (magnitude >= 0x477ff000u) return sign | 0x7c00;  // 65520 = halfway to 2^16: rounds up
  uint32_t significand;            // the value in units of the target's last place
  int shift;                       // low bits to round away
  if (magnitude >= 0x38800000u) {  // >= 2^-14: normal half; rebias 127 -> 15
    significand = magnitude - ((127u - 15u) << 23);
    shift = 13;
  } else {  // subnormal half (unit 2^-24), or rounds to zero
    const int exponent = static_cast<int>(magnitude >> 23);
    if (exponent == 0) return sign;  // F32 subnormals are < 2^-126
    significand = (magnitude & 0x7fffffu) | 0x800000u;
    shift = 126 - exponent;       // value = significand * 2^(exponent - 150) = q * 2^-24
    if (shift > 24) return sign;  // < 2^-25, below half the smallest subnormal
  }
  // Round to nearest, ties to even; a carry out of the mantissa correctly bumps the exponent.
  const uint32_t rest = significand & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  uint32_t rounded = significand >> shift;
  if (rest > half || (rest == half && (rounded & 1))) ++rounded;
  return static_cast<uint16_t>(sign | rounded);
}

float bf16_to_fp32(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

// ggml_compute_fp32_to_bf16: round-to-nearest-even on the top 16 bits; NaN is truncated
// and forced quiet (bit 6), so a payload only in the dropped bits does not become inf.
uint16_t fp32_to_bf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 64);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1)) >> 16);
}

namespace {

using DequantizeFn = void (*)(const void* src, float* dst, int64_t n);
using QuantizeFn = void (*)(const float* src, void* dst, int64_t n);

// Adapters from the typed per-block kernels to the type-erased table entries.
template <typename Block, void (*kFn)(const Block*, float*, int64_t)>
void erased(const void* src, float* dst, int64_t n) {
  kFn(static_cast<const Block*>(src), dst, n);
}

template <typename Block, void (*kFn)(const float*, Block*, int64_t)>
void erased(const float* src, void* dst, int64_t n) {
  kFn(src, static_cast<Block*>(dst), n);
}

void dequantize_row_f32(const float* x, float* y, int64_t n) {
  std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
}
void quantize_row_f32(const float* x, float* y, int64_t n) {
  dequantize_row_f32(x, y, n);
}
void dequantize_row_f16(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}
void quantize_row_f16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}
void dequantize_row_bf16(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}
void quantize_row_bf16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

struct RefKernels {
  DType type;
  DequantizeFn dequantize;
  QuantizeFn quantize;
};

#define LOUPE_REF_KERNELS(type, Block, suffix)                                         \
  RefKernels {                                                                         \
    type, erased<Block, dequantize_row_##suffix>, erased<Block, quantize_row_##suffix> \
  }

constexpr RefKernels kRefKernels[] = {
    LOUPE_REF_KERNELS(DType::kF32, float, f32),
    LOUPE_REF_KERNELS(DType::kF16, uint16_t, f16),
    LOUPE_REF_KERNELS(DType::kBF16, uint16_t, bf16),
    LOUPE_REF_KERNELS(DType::kQ4_0, BlockQ4_0, q4_0_ref),
    LOUPE_REF_KERNELS(DType::kQ4_1, BlockQ4_1, q4_1_ref),
    LOUPE_REF_KERNELS(DType::kQ5_0, BlockQ5_0, q5_0_ref),
    LOUPE_REF_KERNELS(DType::kQ5_1, BlockQ5_1, q5_1_ref),
    LOUPE_REF_KERNELS(DType::kQ8_0, BlockQ8_0, q8_0_ref),
    LOUPE_REF_KERNELS(DType::kQ8_1, BlockQ8_1, q8_1_ref),
    LOUPE_REF_KERNELS(DType::kQ2_K, BlockQ2_K, q2_k_ref),
    LOUPE_REF_KERNELS(DType::kQ3_K, BlockQ3_K, q3_k_ref),
    LOUPE_REF_KERNELS(DType::kQ4_K, BlockQ4_K, q4_k_ref),
    LOUPE_REF_KERNELS(DType::kQ5_K, BlockQ5_K, q5_k_ref),
    LOUPE_REF_KERNELS(DType::kQ6_K, BlockQ6_K, q6_k_ref),
    LOUPE_REF_KERNELS(DType::kQ8_K, BlockQ8_K, q8_k_ref),
    LOUPE_REF_KERNELS(DType::kIQ4_NL, BlockIq4Nl, iq4_nl_ref),
    LOUPE_REF_KERNELS(DType::kIQ4_XS, BlockIq4Xs, iq4_xs_ref),
    LOUPE_REF_KERNELS(DType::kMXFP4, BlockMxfp4, mxfp4_ref),
};

#undef LOUPE_REF_KERNELS

const RefKernels* find_kernels(DType type) {
  for (const RefKernels& k : kRefKernels)
    if (k.type == type) return &k;
  return nullptr;
}

// Unsupported types are a programmer error: stop even when asserts are compiled out.
const RefKernels& kernels_or_abort(DType type, int64_t n) {
  const RefKernels* k = find_kernels(type);
  assert(k != nullptr && "type not supported by the reference (de)quantizers");
  if (k == nullptr) std::abort();
  assert(n % dtype_traits(type).block_size == 0);
  (void)n;
  return *k;
}

}  // namespace

bool can_dequantize(DType type) {
  return find_kernels(type) != nullptr;
}
bool can_quantize(DType type) {
  return find_kernels(type) != nullptr;
}

void dequantize_row_ref(DType type, const void* src, float* dst, int64_t n) {
  kernels_or_abort(type, n).dequantize(src, dst, n);
}

void quantize_row_ref(DType type, const float* src, void* dst, int64_t n) {
  kernels_or_abort(type, n).quantize(src, dst, n);
}

}  // namespace loupe
