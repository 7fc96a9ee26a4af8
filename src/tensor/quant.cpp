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
  uint32_t significand;  // the value in units of the target's last place
  int shift;             // low bits to round away
  if (magnitude >= 0x38800000u) {  // >= 2^-14: normal half; rebias 127 -> 15
    significand = magnitude - ((127u - 15u) << 23);
    shift = 13;
  } else {  // subnormal half (unit 2^-24), or rounds to zero
    const int exponent = static_cast<int>(magnitude >> 23);
    if (exponent == 0) return sign;  // F32 subnormals are < 2^-126
    significand = (magnitude & 0x7fffffu) | 0x800000u;
    shift = 126 - exponent;  // value = significand * 2^(exponent - 150) = q * 2^-24
    if (shift > 24) return sign;  // < 2^-25, below half the smallest subnormal
  }
  // Round to nearest, ties to even; a carry out of the mantissa correctly bumps the exponent.
  const uint32_t rest = significand & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  uint32_t rounded = significand >> shift;
  if (rest > half || (rest == half && (rounded & 1))) ++rounded;
  return static_cast<uint16_t>(sign | rounded);
}

float bf16_to_fp32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

// ggml_compute_fp32_to_bf16: round-to-nearest-even on the top 16 bits; NaN is truncated
// and forced quiet (bit 6), so a payload only in the dropped bits does not become inf.
uint16_t fp32_to_bf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 64);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1)) >> 16);
}

namespace {

bool is_reference_type(DType type) {
  switch (type) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kQ8_0:
    case DType::kQ8_1:
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
    case DType::kQ8_K:
    case DType::kIQ4_NL:
    case DType::kIQ4_XS:
    case DType::kMXFP4:
      return true;
    default:
      return false;
  }
}

[[noreturn]] void unsupported() {
  assert(false && "type not supported by the reference (de)quantizers");
  std::abort();
}

template <typename Block>
const Block* blocks(const void* p) {
  return static_cast<const Block*>(p);
}

template <typename Block>
Block* blocks(void* p) {
  return static_cast<Block*>(p);
}

}  // namespace

bool can_dequantize(DType type) { return is_reference_type(type); }
bool can_quantize(DType type) { return is_reference_type(type); }

void dequantize_row_ref(DType type, const void* src, float* dst, int64_t n) {
  assert(can_dequantize(type));
  assert(n % dtype_traits(type).block_size == 0);
  switch (type) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(blocks<uint16_t>(src)[i]);
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(blocks<uint16_t>(src)[i]);
      return;
    case DType::kQ4_0: return dequantize_row_q4_0_ref(blocks<BlockQ4_0>(src), dst, n);
    case DType::kQ4_1: return dequantize_row_q4_1_ref(blocks<BlockQ4_1>(src), dst, n);
    case DType::kQ5_0: return dequantize_row_q5_0_ref(blocks<BlockQ5_0>(src), dst, n);
    case DType::kQ5_1: return dequantize_row_q5_1_ref(blocks<BlockQ5_1>(src), dst, n);
    case DType::kQ8_0: return dequantize_row_q8_0_ref(blocks<BlockQ8_0>(src), dst, n);
    case DType::kQ8_1: return dequantize_row_q8_1_ref(blocks<BlockQ8_1>(src), dst, n);
    case DType::kQ2_K: return dequantize_row_q2_k_ref(blocks<BlockQ2_K>(src), dst, n);
    case DType::kQ3_K: return dequantize_row_q3_k_ref(blocks<BlockQ3_K>(src), dst, n);
    case DType::kQ4_K: return dequantize_row_q4_k_ref(blocks<BlockQ4_K>(src), dst, n);
    case DType::kQ5_K: return dequantize_row_q5_k_ref(blocks<BlockQ5_K>(src), dst, n);
    case DType::kQ6_K: return dequantize_row_q6_k_ref(blocks<BlockQ6_K>(src), dst, n);
    case DType::kQ8_K: return dequantize_row_q8_k_ref(blocks<BlockQ8_K>(src), dst, n);
    case DType::kIQ4_NL: return dequantize_row_iq4_nl_ref(blocks<BlockIq4Nl>(src), dst, n);
    case DType::kIQ4_XS: return dequantize_row_iq4_xs_ref(blocks<BlockIq4Xs>(src), dst, n);
    case DType::kMXFP4: return dequantize_row_mxfp4_ref(blocks<BlockMxfp4>(src), dst, n);
    default: unsupported();
  }
}

void quantize_row_ref(DType type, const float* src, void* dst, int64_t n) {
  assert(can_quantize(type));
  assert(n % dtype_traits(type).block_size == 0);
  switch (type) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) blocks<uint16_t>(dst)[i] = fp32_to_fp16(src[i]);
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) blocks<uint16_t>(dst)[i] = fp32_to_bf16(src[i]);
      return;
    case DType::kQ4_0: return quantize_row_q4_0_ref(src, blocks<BlockQ4_0>(dst), n);
    case DType::kQ4_1: return quantize_row_q4_1_ref(src, blocks<BlockQ4_1>(dst), n);
    case DType::kQ5_0: return quantize_row_q5_0_ref(src, blocks<BlockQ5_0>(dst), n);
    case DType::kQ5_1: return quantize_row_q5_1_ref(src, blocks<BlockQ5_1>(dst), n);
    case DType::kQ8_0: return quantize_row_q8_0_ref(src, blocks<BlockQ8_0>(dst), n);
    case DType::kQ8_1: return quantize_row_q8_1_ref(src, blocks<BlockQ8_1>(dst), n);
    case DType::kQ2_K: return quantize_row_q2_k_ref(src, blocks<BlockQ2_K>(dst), n);
    case DType::kQ3_K: return quantize_row_q3_k_ref(src, blocks<BlockQ3_K>(dst), n);
    case DType::kQ4_K: return quantize_row_q4_k_ref(src, blocks<BlockQ4_K>(dst), n);
    case DType::kQ5_K: return quantize_row_q5_k_ref(src, blocks<BlockQ5_K>(dst), n);
    case DType::kQ6_K: return quantize_row_q6_k_ref(src, blocks<BlockQ6_K>(dst), n);
    case DType::kQ8_K: return quantize_row_q8_k_ref(src, blocks<BlockQ8_K>(dst), n);
    case DType::kIQ4_NL: return quantize_row_iq4_nl_ref(src, blocks<BlockIq4Nl>(dst), n);
    case DType::kIQ4_XS: return quantize_row_iq4_xs_ref(src, blocks<BlockIq4Xs>(dst), n);
    case DType::kMXFP4: return quantize_row_mxfp4_ref(src, blocks<BlockMxfp4>(dst), n);
    default: unsupported();
  }
}

}  // namespace loupe
