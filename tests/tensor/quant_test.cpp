// Reference quantizers: round trips, hand-built block layouts, half-precision edge cases.
// Bit-exactness against llama.cpp itself is checked in quant_gguf_test.cpp.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "quant_bounds.h"
#include "tensor/quant.h"

namespace loupe {
namespace {

using testing::ErrorStats;
using testing::relative_rmse_bound;

constexpr DType kSupported[] = {
    DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ4_0,   DType::kQ4_1,   DType::kQ5_0,
    DType::kQ5_1, DType::kQ8_0, DType::kQ8_1, DType::kQ2_K,   DType::kQ3_K,   DType::kQ4_K,
    DType::kQ5_K, DType::kQ6_K, DType::kQ8_K, DType::kIQ4_NL, DType::kIQ4_XS, DType::kMXFP4};

std::string type_name(const ::testing::TestParamInfo<DType>& info) {
  return std::string(dtype_name(info.param));
}

std::vector<float> normal_data(int64_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = dist(rng);
  return x;
}

std::vector<uint8_t> quantize(DType type, const std::vector<float>& x) {
  std::vector<uint8_t> q(dtype_row_size(type, static_cast<int64_t>(x.size())));
  quantize_row_ref(type, x.data(), q.data(), static_cast<int64_t>(x.size()));
  return q;
}

std::vector<float> dequantize(DType type, const void* q, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row_ref(type, q, y.data(), n);
  return y;
}

// Dequantizes one hand-built block.
template <typename Block>
std::vector<float> dequantize_block(const Block& block, DType type) {
  return dequantize(type, &block, dtype_traits(type).block_size);
}

// ---------------------------------------------------------------- type support

TEST(Quant, SupportAnswersForEveryType) {
  for (uint32_t id = 0; id < static_cast<uint32_t>(DType::kCount); ++id) {
    if (dtype_traits(id) == nullptr) continue;
    const auto type = static_cast<DType>(id);
    bool expected = false;
    for (DType t : kSupported) expected |= t == type;
    EXPECT_EQ(can_quantize(type), expected) << dtype_name(type);
    EXPECT_EQ(can_dequantize(type), expected) << dtype_name(type);
  }
}

// Calling with an unsupported type is a programmer error: it must stop, not write garbage.
TEST(QuantDeathTest, UnsupportedTypeAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::vector<float> x(kQkK, 1.0f);
  std::vector<uint8_t> q(1024);
  EXPECT_DEATH(quantize_row_ref(DType::kIQ2_XXS, x.data(), q.data(), kQkK), "");
  EXPECT_DEATH(dequantize_row_ref(DType::kTQ2_0, q.data(), x.data(), kQkK), "");
}

TEST(Quant, BlockStructsMatchTypeTraits) {
  EXPECT_EQ(sizeof(BlockQ4_0), dtype_traits(DType::kQ4_0).type_size);
  EXPECT_EQ(sizeof(BlockQ4_1), dtype_traits(DType::kQ4_1).type_size);
  EXPECT_EQ(sizeof(BlockQ5_0), dtype_traits(DType::kQ5_0).type_size);
  EXPECT_EQ(sizeof(BlockQ5_1), dtype_traits(DType::kQ5_1).type_size);
  EXPECT_EQ(sizeof(BlockQ8_0), dtype_traits(DType::kQ8_0).type_size);
  EXPECT_EQ(sizeof(BlockQ8_1), dtype_traits(DType::kQ8_1).type_size);
  EXPECT_EQ(sizeof(BlockQ2_K), dtype_traits(DType::kQ2_K).type_size);
  EXPECT_EQ(sizeof(BlockQ3_K), dtype_traits(DType::kQ3_K).type_size);
  EXPECT_EQ(sizeof(BlockQ4_K), dtype_traits(DType::kQ4_K).type_size);
  EXPECT_EQ(sizeof(BlockQ5_K), dtype_traits(DType::kQ5_K).type_size);
  EXPECT_EQ(sizeof(BlockQ6_K), dtype_traits(DType::kQ6_K).type_size);
  EXPECT_EQ(sizeof(BlockQ8_K), dtype_traits(DType::kQ8_K).type_size);
  EXPECT_EQ(sizeof(BlockIq4Nl), dtype_traits(DType::kIQ4_NL).type_size);
  EXPECT_EQ(sizeof(BlockIq4Xs), dtype_traits(DType::kIQ4_XS).type_size);
  EXPECT_EQ(sizeof(BlockMxfp4), dtype_traits(DType::kMXFP4).type_size);
}

// ---------------------------------------------------------------- round trips

class QuantRoundTrip : public ::testing::TestWithParam<DType> {};

TEST_P(QuantRoundTrip, ErrorWithinBoundForSeveralLengths) {
  const DType type = GetParam();
  // Multiples of 256 so that every type's block divides them; 1 super-block to 1024.
  ErrorStats total;
  for (int64_t n_super : {1, 3, 64, 1024}) {
    const int64_t n = n_super * kQkK;
    const std::vector<float> x = normal_data(n, static_cast<uint32_t>(n_super), 0.02f);
    const std::vector<uint8_t> q = quantize(type, x);
    const std::vector<float> y = dequantize(type, q.data(), n);
    ErrorStats stats;
    stats.add(x.data(), y.data(), n);
    total.add(x.data(), y.data(), n);
    // Short rows are noisy estimates of the expected error: allow them 1.5x.
    EXPECT_LE(stats.relative_rmse(), relative_rmse_bound(type) * (n_super < 64 ? 1.5 : 1.0))
        << "n = " << n;
  }
  EXPECT_LE(total.relative_rmse(), relative_rmse_bound(type));
}

TEST_P(QuantRoundTrip, Deterministic) {
  const DType type = GetParam();
  const std::vector<float> x = normal_data(8 * kQkK, 7);
  EXPECT_EQ(quantize(type, x), quantize(type, x));
}

// Blocks are independent: quantizing a row in pieces gives the bytes of the whole row.
TEST_P(QuantRoundTrip, BlocksAreIndependent) {
  const DType type = GetParam();
  const std::vector<float> x = normal_data(4 * kQkK, 11);
  const std::vector<uint8_t> whole = quantize(type, x);
  std::vector<uint8_t> pieces(whole.size());
  const int64_t split = kQkK;
  quantize_row_ref(type, x.data(), pieces.data(), split);
  quantize_row_ref(type, x.data() + split, pieces.data() + dtype_row_size(type, split),
                   static_cast<int64_t>(x.size()) - split);
  EXPECT_EQ(whole, pieces);
}

// All-zero input must give zeros back, not NaN (every quantizer guards its 1/scale).
TEST_P(QuantRoundTrip, ZerosStayZero) {
  const DType type = GetParam();
  const std::vector<float> x(2 * kQkK, 0.0f);
  const std::vector<uint8_t> q = quantize(type, x);
  for (float v : dequantize(type, q.data(), static_cast<int64_t>(x.size()))) EXPECT_EQ(v, 0.0f);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, QuantRoundTrip, ::testing::ValuesIn(kSupported), type_name);

// quantize(dequantize(q)) == q holds where the dequantized block reproduces the statistic
// the scale came from exactly: the extreme element is stored exactly (Q4_0, Q5_0: code 0 =
// max; Q8_0: +-127 * d; Q4_1, Q5_1: codes 0 and 15/31 give min and max; MXFP4: the
// extreme's E2M1 value keeps floor(log2)) and every code sits on its level. It does NOT hold
// for the least-squares types (K-quants, IQ4_*: a refit of already quantized data may
// choose another scale; ~50-99% of blocks are stable) nor Q8_1 (s = sum * F32 d changes
// once d is rounded to F16).
class QuantIdempotent : public ::testing::TestWithParam<DType> {};

TEST_P(QuantIdempotent, RequantizingDequantizedDataIsExact) {
  const DType type = GetParam();
  const int64_t n = 256 * kQkK;
  const std::vector<uint8_t> q = quantize(type, normal_data(n, 5));
  const std::vector<float> y = dequantize(type, q.data(), n);
  EXPECT_EQ(quantize(type, y), q);
}

INSTANTIATE_TEST_SUITE_P(ExactTypes, QuantIdempotent,
                         ::testing::Values(DType::kF16, DType::kBF16, DType::kQ4_0, DType::kQ4_1,
                                           DType::kQ5_0, DType::kQ5_1, DType::kQ8_0, DType::kMXFP4),
                         type_name);

// ---------------------------------------------------------------- block layouts

constexpr uint16_t kHalfOne = 0x3c00;      // 1.0
constexpr uint16_t kHalfHalf = 0x3800;     // 0.5
constexpr uint16_t kHalfQuarter = 0x3400;  // 0.25
constexpr uint16_t kHalfMinusOne = 0xbc00;

TEST(QuantLayout, Q4_0) {
  BlockQ4_0 b{};
  b.d = kHalfHalf;
  std::memset(b.qs, 0x88, sizeof(b.qs));  // code 8 = 0
  b.qs[0] = 0x1f;                         // element 0: 15 (low nibble), element 16: 1 (high nibble)
  const std::vector<float> y = dequantize_block(b, DType::kQ4_0);
  EXPECT_EQ(y[0], (15 - 8) * 0.5f);
  EXPECT_EQ(y[16], (1 - 8) * 0.5f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[31], 0.0f);
}

TEST(QuantLayout, Q4_1) {
  BlockQ4_1 b{};
  b.d = kHalfHalf;
  b.m = kHalfMinusOne;
  b.qs[0] = 0x2f;
  const std::vector<float> y = dequantize_block(b, DType::kQ4_1);
  EXPECT_EQ(y[0], 15 * 0.5f - 1);
  EXPECT_EQ(y[16], 2 * 0.5f - 1);
  EXPECT_EQ(y[5], -1.0f);
}

TEST(QuantLayout, Q5_0) {
  BlockQ5_0 b{};
  b.d = kHalfOne;
  b.qs[0] = 0x0f;
  b.qs[15] = 0x70;
  b.qh[0] = 0x01;  // bit 0: element 0
  b.qh[3] = 0x80;  // bit 31: element 31
  const std::vector<float> y = dequantize_block(b, DType::kQ5_0);
  EXPECT_EQ(y[0], (0x1f - 16) * 1.0f);
  EXPECT_EQ(y[16], -16.0f);
  EXPECT_EQ(y[15], -16.0f);
  EXPECT_EQ(y[31], (0x17 - 16) * 1.0f);
}

TEST(QuantLayout, Q5_1) {
  BlockQ5_1 b{};
  b.d = kHalfHalf;
  b.m = kHalfOne;
  b.qs[2] = 0x30;
  b.qh[2] = 0x04;  // bit 18: element 18 (high nibble of qs[2])
  const std::vector<float> y = dequantize_block(b, DType::kQ5_1);
  EXPECT_EQ(y[18], 0x13 * 0.5f + 1);
  EXPECT_EQ(y[2], 1.0f);
}

TEST(QuantLayout, Q8_0AndQ8_1) {
  BlockQ8_0 b{};
  b.d = kHalfQuarter;
  b.qs[3] = -128;
  b.qs[31] = 127;
  const std::vector<float> y = dequantize_block(b, DType::kQ8_0);
  EXPECT_EQ(y[3], -32.0f);
  EXPECT_EQ(y[31], 31.75f);

  // Q8_1's s = d * sum(q) is redundant for dequantization, and the quantizer fills it.
  const std::vector<float> x = normal_data(kQk, 3);
  BlockQ8_1 b1{};
  quantize_row_ref(DType::kQ8_1, x.data(), &b1, kQk);
  int sum = 0;
  for (int8_t q : b1.qs) sum += q;
  EXPECT_NEAR(fp16_to_fp32(b1.s), sum * fp16_to_fp32(b1.d),
              std::fabs(sum * fp16_to_fp32(b1.d)) * 1e-3);
}

TEST(QuantLayout, Q2_K) {
  BlockQ2_K b{};
  b.d = kHalfOne;
  b.dmin = kHalfHalf;
  b.scales[5] = 0x23;  // group 5 (elements 80..95): scale 3, min 2
  // Element 80 = first half, quarter 2 (bits 4-5), position 16 within the quarter.
  b.qs[16] = 3 << 4;
  b.qs[32 + 31] = 2 << 6;  // element 128 + 96 + 31 = 255, group 15 (scale 0, min 0)
  b.scales[15] = 0x01;
  const std::vector<float> y = dequantize_block(b, DType::kQ2_K);
  EXPECT_EQ(y[80], 1.0f * 3 * 3 - 0.5f * 2);
  EXPECT_EQ(y[81], -0.5f * 2);
  EXPECT_EQ(y[255], 2.0f);
  EXPECT_EQ(y[0], 0.0f);
}

TEST(QuantLayout, Q3_K) {
  BlockQ3_K b{};
  b.d = kHalfHalf;
  // Group 13: low nibble in the high half of scales[5], top 2 bits in bits 6-7 of
  // scales[8 + 13 % 4]. 6-bit value 45 -> signed 13.
  b.scales[5] = (45 & 0xf) << 4;
  b.scales[9] = (45 >> 4) << 6;
  // Element 210 = 13 * 16 + 2: second half, quarter 2 (bits 4-5), position 18.
  b.qs[32 + 18] = 2 << 4;
  b.hmask[210 % 32] = 1 << (210 / 32);  // high bit set: no -4
  const std::vector<float> y = dequantize_block(b, DType::kQ3_K);
  EXPECT_EQ(y[210], 0.5f * 13 * 2);
  EXPECT_EQ(y[211], 0.5f * 13 * -4);  // low bits 0, high bit clear
  // Every other group has 6-bit scale 0 -> -32.
  EXPECT_EQ(y[0], 0.5f * -32 * -4);
}

TEST(QuantLayout, Q4_KAndQ5_K) {
  // Group 1 (6-bit scale/min in bytes 1 and 5) and group 5 (low 4 bits in byte 9, top 2
  // bits in the spare top bits of bytes 1 and 5).
  uint8_t scales[kKScaleBytes] = {};
  scales[1] = (2 << 6) | 3;  // group 1 scale 3; group 5 scale top bits 0b10
  scales[5] = (1 << 6) | 4;  // group 1 min 4; group 5 min top bits 0b01
  scales[9] = (2 << 4) | 5;  // group 5: scale low 5 -> 37, min low 2 -> 18

  BlockQ4_K b4{};
  b4.d = kHalfOne;
  b4.dmin = kHalfHalf;
  std::memcpy(b4.scales, scales, sizeof(scales));
  b4.qs[1] = 0x90;       // element 33 (group 1, high nibble) = 9
  b4.qs[64 + 3] = 0x70;  // element 163 (group 5, high nibble of the third 32) = 7
  std::vector<float> y = dequantize_block(b4, DType::kQ4_K);
  EXPECT_EQ(y[33], 3.0f * 9 - 0.5f * 4);
  EXPECT_EQ(y[163], 37.0f * 7 - 0.5f * 18);
  EXPECT_EQ(y[1], 0.0f);

  BlockQ5_K b5{};
  b5.d = kHalfOne;
  b5.dmin = kHalfHalf;
  std::memcpy(b5.scales, scales, sizeof(scales));
  b5.qs[64 + 3] = 0x70;
  b5.qh[3] = 1 << 5;  // bit 4 of the code of group 5's element 3
  b5.qh[1] = 1 << 1;  // ... and of group 1's element 1 (code 16, low nibble 0)
  y = dequantize_block(b5, DType::kQ5_K);
  EXPECT_EQ(y[163], 37.0f * 23 - 0.5f * 18);
  EXPECT_EQ(y[33], 3.0f * 16 - 0.5f * 4);
}

TEST(QuantLayout, Q6_K) {
  BlockQ6_K b{};
  b.d = kHalfHalf;
  b.scales[12] = -3;
  b.scales[2] = 5;
  // All codes default to 0 -> -32. Element 198 = 128 + 70: second half, quarter 2 (high
  // nibble of ql[64 + 6], bits 4-5 of qh[32 + 6]), group 12.
  b.ql[64 + 6] = 0xa0;
  b.qh[32 + 6] = 3 << 4;
  // Element 37: first half, quarter 1 (low nibble of ql[32 + 5], bits 2-3 of qh[5]).
  b.ql[32 + 5] = 0x01;
  b.qh[5] = 2 << 2;
  const std::vector<float> y = dequantize_block(b, DType::kQ6_K);
  EXPECT_EQ(y[198], 0.5f * -3 * ((10 | (3 << 4)) - 32));
  EXPECT_EQ(y[37], 0.5f * 5 * ((1 | (2 << 4)) - 32));
  EXPECT_EQ(y[0], 0.0f);  // group 0 scale 0
}

TEST(QuantLayout, Q8_K) {
  BlockQ8_K b{};
  b.d = 0.5f;
  b.qs[7] = -100;
  const std::vector<float> y = dequantize_block(b, DType::kQ8_K);
  EXPECT_EQ(y[7], -50.0f);
  EXPECT_EQ(y[8], 0.0f);

  const std::vector<float> x = normal_data(kQkK, 9);
  quantize_row_ref(DType::kQ8_K, x.data(), &b, kQkK);
  for (int g = 0; g < kQkK / 16; ++g) {
    int sum = 0;
    for (int i = 0; i < 16; ++i) sum += b.qs[16 * g + i];
    EXPECT_EQ(b.bsums[g], sum);
  }
}

TEST(QuantLayout, Iq4Nl) {
  BlockIq4Nl b{};
  b.d = kHalfHalf;
  b.qs[0] = 0xf0;
  const std::vector<float> y = dequantize_block(b, DType::kIQ4_NL);
  EXPECT_EQ(y[0], 0.5f * -127);
  EXPECT_EQ(y[16], 0.5f * 113);
}

TEST(QuantLayout, Iq4Xs) {
  BlockIq4Xs b{};
  b.d = kHalfQuarter;
  // Block 5: low nibble of its scale in the high half of scales_l[2], top bits 10-11 of
  // scales_h. 6-bit 40 -> signed 8.
  b.scales_l[2] = 8 << 4;
  b.scales_h = 2 << 10;
  b.qs[16 * 5] = 0x3c;  // element 160: level 12 (53), element 176: level 3 (-65)
  const std::vector<float> y = dequantize_block(b, DType::kIQ4_XS);
  EXPECT_EQ(y[160], 0.25f * 8 * 53);
  EXPECT_EQ(y[176], 0.25f * 8 * -65);
  EXPECT_EQ(y[0], 0.25f * -32 * -127);  // scale 0 -> -32, code 0 -> -127
}

TEST(QuantLayout, Mxfp4) {
  BlockMxfp4 b{};
  b.e = 127;       // 2^0: values are plain E2M1
  b.qs[0] = 0xf7;  // element 0: +6, element 16: -6
  b.qs[1] = 0x91;  // element 1: +0.5, element 17: -0.5
  std::vector<float> y = dequantize_block(b, DType::kMXFP4);
  EXPECT_EQ(y[0], 6.0f);
  EXPECT_EQ(y[16], -6.0f);
  EXPECT_EQ(y[1], 0.5f);
  EXPECT_EQ(y[17], -0.5f);
  b.e = 130;  // 2^3
  y = dequantize_block(b, DType::kMXFP4);
  EXPECT_EQ(y[1], 4.0f);
  b.e = 0;  // 2^-127, an F32 subnormal
  y = dequantize_block(b, DType::kMXFP4);
  EXPECT_EQ(y[0], 6.0f * std::ldexp(1.0f, -127));

  // Quantizing: amax 5 -> shared exponent floor(log2 5) - 2 = 0 (E8M0 127). Exact ties go
  // to the lower code: 5 between 4 (code 6) and 6 (code 7), -0.75 between -0.5 (code 9)
  // and -1 (code 10); 0 is +0 (code 0), not -0 (code 8).
  std::vector<float> x(kQk, 0.0f);
  x[0] = 5.0f;
  x[1] = -0.75f;
  x[2] = 1.2f;
  quantize_row_ref(DType::kMXFP4, x.data(), &b, kQk);
  EXPECT_EQ(b.e, 127);
  EXPECT_EQ(b.qs[0], 6);
  EXPECT_EQ(b.qs[1], 9);
  EXPECT_EQ(b.qs[2], 2);
  EXPECT_EQ(b.qs[3], 0);
}

// ---------------------------------------------------------------- half precision

TEST(Fp16, ExactValuesAndSpecials) {
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x03ff), 1023 * std::ldexp(1.0f, -24));
  EXPECT_EQ(fp16_to_fp32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xc000), -2.0f);
  EXPECT_EQ(std::bit_cast<uint32_t>(fp16_to_fp32(0x8000)), 0x80000000u);
  EXPECT_EQ(fp16_to_fp32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp16_to_fp32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7e00)));
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7c01)));  // signaling NaN stays a NaN (quieted)

  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65519.996f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);  // tie with 2^16 rounds to even = inf
  EXPECT_EQ(fp32_to_fp16(1e10f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN()), 0x7e00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::quiet_NaN()), 0xfe00);
  EXPECT_EQ(fp32_to_fp16(std::bit_cast<float>(0x7f800001u)), 0x7e00);  // payload below F16's
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(1e-10f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::denorm_min()), 0x0000);
  // Ties round to even: in the subnormal range ...
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(fp32_to_fp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(3 * std::ldexp(1.0f, -25)), 0x0002);
  // ... across the subnormal/normal boundary ...
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -25)), 0x0400);
  // ... and among normals.
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(fp32_to_fp16(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), 0x3c01);
}

// Every finite half converts to F32 and back unchanged; every midpoint between neighbours
// rounds to the even one, and a hair off the midpoint to the nearer one.
TEST(Fp16, ExhaustiveRoundTripAndMidpoints) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto half = static_cast<uint16_t>(h);
    if ((half & 0x7c00) == 0x7c00) continue;  // inf, NaN
    const float f = fp16_to_fp32(half);
    ASSERT_EQ(fp32_to_fp16(f), half) << std::hex << h;
    if ((half & 0x7fff) == 0x7bff) continue;  // the next one up is inf
    const float next = fp16_to_fp32(static_cast<uint16_t>(half + 1));
    const float mid = (f + next) / 2;  // exact: halves have 11 significant bits
    const uint16_t even = (half & 1) ? static_cast<uint16_t>(half + 1) : half;
    ASSERT_EQ(fp32_to_fp16(mid), even) << std::hex << h;
    const float toward_next = std::nextafter(mid, next);
    const float toward_this = std::nextafter(mid, f);
    ASSERT_EQ(fp32_to_fp16(toward_next), static_cast<uint16_t>(half + 1)) << std::hex << h;
    ASSERT_EQ(fp32_to_fp16(toward_this), half) << std::hex << h;
  }
}

#if defined(__FLT16_MAX__)
// The compiler's _Float16 conversion (IEEE round-to-nearest-even) as an independent oracle.
TEST(Fp16, MatchesCompilerFloat16OnSampledBitPatterns) {
  for (uint64_t bits = 0; bits < (1ull << 32); bits += 4099) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(bits));
    if (std::isnan(f)) continue;
    const auto expected = std::bit_cast<uint16_t>(static_cast<_Float16>(f));
    ASSERT_EQ(fp32_to_fp16(f), expected) << std::hex << bits;
  }
}
#endif

TEST(Bf16, RoundingAndSpecials) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_fp32(0xc040), -3.0f);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie -> even
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie -> even
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f807fffu)), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds to inf
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(fp32_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  // NaN whose payload lives only in the dropped bits must not become inf: it is quieted.
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x7f800001u)), 0x7fc0);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0xffc00000u)), 0xffc0);
  EXPECT_TRUE(std::isnan(bf16_to_fp32(0x7fc0)));
  // Subnormals are kept (not flushed), with the same rounding.
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x00018000u)), 0x0002);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x00008000u)), 0x0000);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x00010000u)), 0x0001);
  EXPECT_EQ(bf16_to_fp32(0x0001), std::bit_cast<float>(0x00010000u));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto bf = static_cast<uint16_t>(h);
    if ((bf & 0x7f80) == 0x7f80 && (bf & 0x7f)) continue;  // NaN
    ASSERT_EQ(fp32_to_bf16(bf16_to_fp32(bf)), bf);
  }
}

}  // namespace
}  // namespace loupe
