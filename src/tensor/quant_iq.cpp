// Reference (de)quantization of the non-linear 4-bit types IQ4_NL, IQ4_XS and MXFP4.
//
// IQ4_NL/IQ4_XS: ggml-quants.c (llama.cpp b4748) quantize_iq4_nl / quantize_iq4_xs with no
// importance matrix, i.e. quantize_row_iq4_nl_impl with weights x^2 and ntry = 7: per
// 32-element block a least-squares scale over 15 candidate scales, codes = nearest entry of
// kIq4nlValues. (ggml's quantize_row_iq4_nl_ref uses ntry = -1; llama-quantize does not.)
// MXFP4: quantize_row_mxfp4_ref (added to ggml after b4748) following the OCP MX spec: shared
// E8M0 exponent floor(log2(amax)) - 2, codes = nearest E2M1 value.
#include <cassert>
#include <cmath>
#include <cstring>

#include "tensor/quant.h"
#include "tensor/quant_impl.h"

namespace loupe {
namespace {

using quant_detail::clamp_int;
using quant_detail::nearest_int;
using quant_detail::signed_absmax;

constexpr float kGroupMaxEps = 1e-15f;  // GROUP_MAX_EPS
constexpr int kIq4Tries = 7;            // ntry of quantize_iq4_nl / quantize_iq4_xs

// Index of the kIq4nlValues entry nearest to x; at an exact midpoint (as computed in float)
// the upper entry wins (ggml's best_index_int8).
int nearest_iq4nl_index(float x) {
  const int8_t* values = kIq4nlValues;
  if (x <= values[0]) return 0;
  if (x >= values[15]) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (x < values[mid])
      hi = mid;
    else
      lo = mid;
  }
  return x - values[hi - 1] < values[hi] - x ? hi - 1 : hi;
}

// quantize_row_iq4_nl_impl for one super-block x [n_super] (32 for IQ4_NL, 256 for
// IQ4_XS) of 32-element blocks. For IQ4_XS the block scales become 6-bit signed values
// against the F16 d = max_scale / -32 (scales_h/scales_l); for IQ4_NL the block scale is d.
void quantize_iq4_super_block(int n_super, const float* x, uint16_t* d_out, uint8_t* qs,
                              uint16_t* scales_h, uint8_t* scales_l) {
  constexpr int kBlock = 32;
  const int n_blocks = n_super / kBlock;
  const int8_t* values = kIq4nlValues;
  uint8_t L[kQkK];
  float scales[kQkK / kBlock];
  float weight[kBlock];

  float max_scale = 0, amax_scale = 0;
  for (int ib = 0; ib < n_blocks; ++ib) {
    const float* xb = x + ib * kBlock;
    uint8_t* lb = L + ib * kBlock;
    for (int j = 0; j < kBlock; ++j) weight[j] = xb[j] * xb[j];
    const auto [amax, max] = signed_absmax(xb, kBlock);
    if (amax < kGroupMaxEps) {
      scales[ib] = 0;
      continue;
    }
    // Start with the extreme on the -127 level, then try 2*ntry+1 scales around it.
    float d = -max / values[0];
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < kBlock; ++j) {
      const int l = nearest_iq4nl_index(id * xb[j]);
      lb[j] = static_cast<uint8_t>(l);
      const float q = values[l];
      const float w = weight[j];
      sumqx += w * q * xb[j];
      sumq2 += w * q * q;
    }
    d = sumqx / sumq2;
    float best = d * sumqx;
    for (int itry = -kIq4Tries; itry <= kIq4Tries; ++itry) {
      id = (itry + values[0]) / max;
      sumqx = sumq2 = 0;
      for (int j = 0; j < kBlock; ++j) {
        const float q = values[nearest_iq4nl_index(id * xb[j])];
        const float w = weight[j];
        sumqx += w * q * xb[j];
        sumq2 += w * q * q;
      }
      if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    scales[ib] = d;
    const float abs_d = std::fabs(d);
    if (abs_d > amax_scale) {
      amax_scale = abs_d;
      max_scale = d;
    }
  }

  if (n_blocks > 1) {
    *scales_h = 0;
    const float d = -max_scale / 32;  // -0.0 for an all-zero super-block, stored as 0x8000
    *d_out = fp32_to_fp16(d);
    const float id = d ? 1 / d : 0.f;
    for (int ib = 0; ib < n_blocks; ++ib) {
      const int l = clamp_int(nearest_int(id * scales[ib]), -32, 31);
      const float dl = d * l;
      const float idl = dl ? 1 / dl : 0.f;
      for (int j = 0; j < kBlock; ++j)
        L[ib * kBlock + j] = static_cast<uint8_t>(nearest_iq4nl_index(idl * x[ib * kBlock + j]));
      const int biased = l + 32;
      if (ib % 2 == 0)
        scales_l[ib / 2] = static_cast<uint8_t>(biased & 0xf);
      else
        scales_l[ib / 2] |= static_cast<uint8_t>((biased & 0xf) << 4);
      *scales_h = static_cast<uint16_t>(*scales_h | ((biased >> 4) << (2 * ib)));
    }
  } else {
    *d_out = fp32_to_fp16(scales[0]);
    const float id = scales[0] ? 1 / scales[0] : 0;
    for (int j = 0; j < n_super; ++j) L[j] = static_cast<uint8_t>(nearest_iq4nl_index(id * x[j]));
  }

  for (int b = 0; b < n_blocks; ++b)
    for (int j = 0; j < 16; ++j)
      qs[16 * b + j] = static_cast<uint8_t>(L[32 * b + j] | (L[32 * b + 16 + j] << 4));
}

// 2^(e - 128): the E8M0 scale 2^(e - 127) halved, because kMxfp4Values are doubled
// (ggml_e8m0_to_fp32_half; e = 0 and 1 give F32 subnormals).
float e8m0_to_fp32_half(uint8_t e) {
  const uint32_t bits = e < 2 ? 0x00200000u << e : static_cast<uint32_t>(e - 1) << 23;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// Nearest E2M1 code to x at scale d; ties go to the lower code (+0 before -0).
int nearest_mxfp4_index(float x, float d) {
  int best_index = 0;
  float best_err = std::fabs(kMxfp4Values[0] * d - x);
  for (int i = 1; i < 16; ++i) {
    const float err = std::fabs(kMxfp4Values[i] * d - x);
    if (err < best_err) {
      best_index = i;
      best_err = err;
    }
  }
  return best_index;
}

void dequantize_nibbles(const uint8_t* qs, const int8_t* values, float d, float* y) {
  for (int j = 0; j < kQk / 2; ++j) {
    y[j] = d * values[qs[j] & 0xf];
    y[j + kQk / 2] = d * values[qs[j] >> 4];
  }
}

}  // namespace

void quantize_row_iq4_nl_ref(const float* x, BlockIq4Nl* y, int64_t n) {
  assert(n % kQk == 0);
  for (int64_t i = 0; i < n / kQk; ++i, x += kQk) {
    uint16_t unused_h;
    quantize_iq4_super_block(kQk, x, &y[i].d, y[i].qs, &unused_h, nullptr);
  }
}

void quantize_row_iq4_xs_ref(const float* x, BlockIq4Xs* y, int64_t n) {
  assert(n % kQkK == 0);
  for (int64_t i = 0; i < n / kQkK; ++i, x += kQkK)
    quantize_iq4_super_block(kQkK, x, &y[i].d, y[i].qs, &y[i].scales_h, y[i].scales_l);
}

void quantize_row_mxfp4_ref(const float* x, BlockMxfp4* y, int64_t n) {
  assert(n % kQk == 0);
  for (int64_t i = 0; i < n / kQk; ++i, x += kQk) {
    float amax = 0.0f;
    for (int j = 0; j < kQk; ++j) amax = std::fabs(x[j]) > amax ? std::fabs(x[j]) : amax;
    // Shared exponent so that amax / 2^e lands in [4, 8): E2M1's largest value is 6. ggml
    // converts the float straight to uint8_t; via int is the same in range and wraps below it.
    const uint8_t e =
        amax > 0.0f ? static_cast<uint8_t>(static_cast<int>(std::floor(std::log2(amax)) - 2 + 127))
                    : 0;
    const float d = e8m0_to_fp32_half(e);
    y[i].e = e;
    for (int j = 0; j < kQk / 2; ++j) {
      const int q0 = nearest_mxfp4_index(x[j], d);
      const int q1 = nearest_mxfp4_index(x[j + kQk / 2], d);
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void dequantize_row_iq4_nl_ref(const BlockIq4Nl* x, float* y, int64_t n) {
  assert(n % kQk == 0);
  for (int64_t i = 0; i < n / kQk; ++i, y += kQk)
    dequantize_nibbles(x[i].qs, kIq4nlValues, fp16_to_fp32(x[i].d), y);
}

void dequantize_row_iq4_xs_ref(const BlockIq4Xs* x, float* y, int64_t n) {
  assert(n % kQkK == 0);
  for (int64_t i = 0; i < n / kQkK; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int ib = 0; ib < kQkK / 32; ++ib, y += 32) {
      const int ls = ((x[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf) |
                     (((x[i].scales_h >> (2 * ib)) & 3) << 4);
      dequantize_nibbles(x[i].qs + 16 * ib, kIq4nlValues, d * (ls - 32), y);
    }
  }
}

void dequantize_row_mxfp4_ref(const BlockMxfp4* x, float* y, int64_t n) {
  assert(n % kQk == 0);
  for (int64_t i = 0; i < n / kQk; ++i, y += kQk)
    dequantize_nibbles(x[i].qs, kMxfp4Values, e8m0_to_fp32_half(x[i].e), y);
}

}  // namespace loupe
