// Quantized block layouts, byte for byte as ggml stores them in GGUF (ggml-common.h).
// Every block covers kQk (32) or kQkK (256) consecutive elements of one row; half
// precision fields are IEEE binary16 bit patterns; multi-byte fields are little-endian.
#pragma once

#include <cstdint>

namespace loupe {

inline constexpr int kQk = 32;           // elements per block of the "legacy" types, IQ4_NL, MXFP4
inline constexpr int kQkK = 256;         // elements per K-quant super-block (QK_K), also IQ4_XS
inline constexpr int kKScaleBytes = 12;  // packed 6-bit scales+mins of Q4_K/Q5_K (K_SCALE_SIZE)

// x = d * (q - 8), q in [0, 15]; element j in the low nibble of qs[j], j+16 in the high one.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQk / 2];
};

// x = d * q + m, q in [0, 15]; nibble order as Q4_0.
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQk / 2];
};

// x = d * (q - 16), q in [0, 31]; the 5th bit of element j is bit j of the u32 qh.
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQk / 2];
};

// x = d * q + m, q in [0, 31]; bit layout as Q5_0.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQk / 2];
};

// x = d * q.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQk];
};

// x = d * q; s = d * sum(q), precomputed for the dot products of Q4_1/Q5_1 weights.
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[kQk];
};

// 16 groups of 16: x = d * (scales[g] & 15) * q - dmin * (scales[g] >> 4), q in [0, 3].
// qs[32*h + l] holds, from bit 0 up in steps of 2, elements 128*h + l + {0, 32, 64, 96}.
struct BlockQ2_K {
  uint8_t scales[kQkK / 16];
  uint8_t qs[kQkK / 4];
  uint16_t d;
  uint16_t dmin;
};

// 16 groups of 16: x = d * (s[g] - 32) * (q - 4), q in [0, 7], with 6-bit s[g] packed in
// `scales` (low nibbles in bytes 0..7, high 2 bits in bytes 8..11). The low two bits of q
// are laid out as in Q2_K; bit 2 of element e is bit (e / 32) of hmask[e % 32].
struct BlockQ3_K {
  uint8_t hmask[kQkK / 8];
  uint8_t qs[kQkK / 4];
  uint8_t scales[12];
  uint16_t d;
};

// 8 groups of 32: x = d * sc[g] * q - dmin * m[g], q in [0, 15], 6-bit sc/m packed in
// `scales` (see get_scale_min_k4). qs[32*p + l]: element 64*p + l low, 64*p + 32 + l high.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQkK / 2];
};

// As Q4_K with q in [0, 31]; bit 4 of element 64*p + l is bit 2p of qh[l], of element
// 64*p + 32 + l bit 2p+1.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQkK / 8];
  uint8_t qs[kQkK / 2];
};

// 16 groups of 16: x = d * scales[g] * (q - 32), q in [0, 63]. Per half h of 128:
// ql[64h + l] = low nibbles of elements (l, l+64), ql[64h + 32 + l] of (l+32, l+96),
// qh[32h + l] = high 2-bit pairs of elements l, l+32, l+64, l+96 (relative to 128h).
struct BlockQ6_K {
  uint8_t ql[kQkK / 2];
  uint8_t qh[kQkK / 4];
  int8_t scales[kQkK / 16];
  uint16_t d;
};

// Activation format for K-quant dot products: x = d * q, d in F32; bsums = sums of 16.
struct BlockQ8_K {
  float d;
  int8_t qs[kQkK];
  int16_t bsums[kQkK / 16];
};

// x = d * kIq4nlValues[q]; nibble order as Q4_0.
struct BlockIq4Nl {
  uint16_t d;
  uint8_t qs[kQk / 2];
};

// 8 groups of 32: x = d * (s[g] - 32) * kIq4nlValues[q], 6-bit s[g] = low nibble
// (scales_l[g/2] >> 4*(g%2)) | 2 high bits (scales_h >> 2g); nibble order per 32 as Q4_0.
struct BlockIq4Xs {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[kQkK / 64];
  uint8_t qs[kQkK / 2];
};

// OCP Microscaling MXFP4: x = 2^(e - 127) * E2M1(q). ggml stores E2M1 values doubled
// (kMxfp4Values) and halves the E8M0 scale instead; nibble order as Q4_0.
struct BlockMxfp4 {
  uint8_t e;
  uint8_t qs[kQk / 2];
};

// Sizes match dtype.cpp's table (and ggml-common.h's static_asserts).
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);
static_assert(sizeof(BlockIq4Nl) == 18);
static_assert(sizeof(BlockIq4Xs) == 136);
static_assert(sizeof(BlockMxfp4) == 17);

// The 16 IQ4_NL/IQ4_XS levels (ggml-common.h kvalues_iq4nl): a non-uniform grid fitted
// to the distribution of normalized weights.
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// E2M1 (sign, 2 exponent bits, 1 mantissa bit) values times 2 (ggml-common.h
// kvalues_mxfp4): codes 0..7 = +{0, 0.5, 1, 1.5, 2, 3, 4, 6}, 8..15 the negatives.
inline constexpr int8_t kMxfp4Values[16] = {0, 1,  2,  3,  4,  6,  8,  12,
                                            0, -1, -2, -3, -4, -6, -8, -12};

}  // namespace loupe
