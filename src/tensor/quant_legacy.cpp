// Reference (de)quantization of the 32-element "legacy" types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q8_1. Algorithms: ggml-quants.c quantize_row_*_ref and dequantize_row_* (llama.cpp b4748):
// one scale per block from the absolute maximum (or the min/max range), then rounding.
#include <algorithm>
#include <cassert>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "tensor/quant.h"

namespace loupe {
namespace {

constexpr int kHalf = kQk / 2;

// Absolute maximum of block x [kQk], and the signed value that attains it first.
void signed_abs_max(const float* x, float* amax, float* max) {
  *amax = 0.0f;
  *max = 0.0f;
  for (int j = 0; j < kQk; ++j) {
    if (*amax < std::fabs(x[j])) {
      *amax = std::fabs(x[j]);
      *max = x[j];
    }
  }
}

void min_max(const float* x, float* min, float* max) {
  *min = FLT_MAX;
  *max = -FLT_MAX;
  for (int j = 0; j < kQk; ++j) {
    if (x[j] < *min) *min = x[j];
    if (x[j] > *max) *max = x[j];
  }
}

// Packs 32 5-bit codes q [kQk]: low nibbles as Q4_0, bit 4 of code j into bit j of qh.
void pack_q5(const uint8_t* q, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < kHalf; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + kHalf] & 0x0f) << 4));
    qh |= static_cast<uint32_t>(q[j] >> 4) << j;
    qh |= static_cast<uint32_t>(q[j + kHalf] >> 4) << (j + kHalf);
  }
  std::memcpy(qh_bytes, &qh, sizeof(qh));  // little-endian, as ggml's memcpy
}

// The 5-bit code of element j (0..31) of a Q5 block.
int q5_code(const uint8_t* qs, const uint8_t* qh_bytes, int j) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, sizeof(qh));
  const int low = j < kHalf ? (qs[j] & 0x0f) : (qs[j - kHalf] >> 4);
  return low | static_cast<int>(((qh >> j) & 1) << 4);
}

// Symmetric 8-bit quantization: d = amax / 127, q = round(x / d) half away from zero
// (ggml uses roundf here, not nearest_int). Returns d.
float quantize_q8_block(const float* x, int8_t* qs) {
  float amax = 0.0f;
  for (int j = 0; j < kQk; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  const float d = amax / ((1 << 7) - 1);
  const float id = d ? 1.0f / d : 0.0f;
  for (int j = 0; j < kQk; ++j) qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  return d;
}

}  // namespace

// The scale maps the signed extreme to code 0 (d = max / -8), so the extreme value is
// exact and the asymmetric range [-8, 7] is used fully on the side of the extreme.
void quantize_row_q4_0_ref(const float* x, BlockQ4_0* y, int64_t n) {
  assert(n % kQk == 0);
  for (int64_t i = 0; i < n / kQk; ++i, x += kQk) {
    float amax, max;
    signed_abs_max(x, &amax, &max);
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kHalf; ++j) {
      // Truncation of x/d + 8.5 is round-half-up; the clamp catches x/d rounding past 7.5.
      const int q0 = std::min(15, static_cast<int>(x[j] * id + 8.5f));
      const int q1 = std::min(15, static_cast<int>(x[j + kHalf] * id + 8.5f));
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quantize_row_q4_1_ref(const float* x, BlockQ4_1* y, int64_t n) {
  assert(n % kQk == 0);
  for (int64_t i = 0; i < n / kQk; ++i, x += kQk) {
    float min, max;
    min_max(x, &min, &max);
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    for (int j = 0; j < kHalf; ++j) {
      const int q0 = std::min(15, static_cast<int>((x[j] - min) * id + 0.5f));
      const int q1 = std::min(15, static_cast<int>((x[j + kHalf] - min) * id + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quantize_row_q5_0_ref(const float* x, BlockQ5_0* y, int64_t n) {
  assert(n % kQk == 0);
  for (int64_t i = 0; i < n / kQk; ++i, x += kQk) {
    float amax, max;
    signed_abs_max(x, &amax, &max);
    const float d = max / -16;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    uint8_t q[kQk];
    for (int j = 0; j < kQk; ++j)
      q[j] = static_cast<uint8_t>(std::min(31, static_cast<int>(x[j] * id + 16.5f)));
    pack_q5(q, y[i].qs, y[i].qh);
  }
}

void quantize_row_q5_1_ref(const float* x, BlockQ5_1* y, int64_t n) {
  assert(n % kQk == 0);
  for (int64_t i = 0; i < n / kQk; ++i, x += kQk) {
    float min, max;
    min_max(x, &min, &max);
    const float d = (max - min) / ((1 << 5) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    // No clamp in ggml here: (x - min) / d is at most 31 + rounding, +0.5 truncates to 31.
    uint8_t q[kQk];
    for (int j = 0; j < kQk; ++j)
      q[j] = static_cast<uint8_t>(static_cast<int>((x[j] - min) * id + 0.5f));
    pack_q5(q, y[i].qs, y[i].qh);
  }
}

void quantize_row_q8_0_ref(const float* x, BlockQ8_0* y, int64_t n) {
  assert(n % kQk == 0);
  for (int64_t i = 0; i < n / kQk; ++i, x += kQk)
    y[i].d = fp32_to_fp16(quantize_q8_block(x, y[i].qs));
}

void quantize_row_q8_1_ref(const float* x, BlockQ8_1* y, int64_t n) {
  assert(n % kQk == 0);
  for (int64_t i = 0; i < n / kQk; ++i, x += kQk) {
    const float d = quantize_q8_block(x, y[i].qs);
    int sum = 0;
    for (int j = 0; j < kQk; ++j) sum += y[i].qs[j];
    y[i].d = fp32_to_fp16(d);
    y[i].s = fp32_to_fp16(static_cast<float>(sum) * d);  // F32 d, not the rounded F16 one
  }
}

void dequantize_row_q4_0_ref(const BlockQ4_0* x, float* y, int64_t n) {
  assert(n % kQk == 0);
  for (int64_t i = 0; i < n / kQk; ++i, y += kQk) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kHalf; ++j) {
      y[j] = static_cast<float>((x[i].qs[j] & 0x0f) - 8) * d;
      y[j + kHalf] = static_cast<float>((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_row_q4_1_ref(const BlockQ4_1* x, float* y, int64_t n) {
  assert(n % kQk == 0);
  for (int64_t i = 0; i < n / kQk; ++i, y += kQk) {
    const float d = fp16_to_fp32(x[i].d);
    const float m = fp16_to_fp32(x[i].m);
    for (int j = 0; j < kHalf; ++j) {
      y[j] = static_cast<float>(x[i].qs[j] & 0x0f) * d + m;
      y[j + kHalf] = static_cast<float>(x[i].qs[j] >> 4) * d + m;
    }
  }
}

void dequantize_row_q5_0_ref(const BlockQ5_0* x, float* y, int64_t n) {
  assert(n % kQk == 0);
  for (int64_t i = 0; i < n / kQk; ++i, y += kQk) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQk; ++j) y[j] = static_cast<float>(q5_code(x[i].qs, x[i].qh, j) - 16) * d;
  }
}

void dequantize_row_q5_1_ref(const BlockQ5_1* x, float* y, int64_t n) {
  assert(n % kQk == 0);
  for (int64_t i = 0; i < n / kQk; ++i, y += kQk) {
    const float d = fp16_to_fp32(x[i].d);
    const float m = fp16_to_fp32(x[i].m);
    for (int j = 0; j < kQk; ++j) y[j] = static_cast<float>(q5_code(x[i].qs, x[i].qh, j)) * d + m;
  }
}

void dequantize_row_q8_0_ref(const BlockQ8_0* x, float* y, int64_t n) {
  assert(n % kQk == 0);
  for (int64_t i = 0; i < n / kQk; ++i, y += kQk) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQk; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

void dequantize_row_q8_1_ref(const BlockQ8_1* x, float* y, int64_t n) {
  assert(n % kQk == 0);
  for (int64_t i = 0; i < n / kQk; ++i, y += kQk) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQk; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

}  // namespace loupe
