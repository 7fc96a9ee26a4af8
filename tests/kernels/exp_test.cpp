// exp_det: the softmax exponential every ISA computes to the same bits (kernels/exp.h),
// against a double-precision exp; the vector versions are checked through the attention
// kernels, which must equal the scalar twin bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>

#include "kernels/exp.h"

namespace loupe::kernels {
namespace {

// Distance in F32 units in the last place between two finite floats of the same sign.
int64_t ulps(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, sizeof(ia));
  std::memcpy(&ib, &b, sizeof(ib));
  return std::llabs(static_cast<int64_t>(ia) - static_cast<int64_t>(ib));
}

TEST(ExpDet, WithinOneUlpOfTheCorrectlyRoundedValue) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> wide(-110.0f, 95.0f), softmax(-30.0f, 0.0f);
  int64_t off_by_one = 0, n = 0;
  for (int i = 0; i < 400000; ++i, ++n) {
    const float x = i % 2 == 0 ? wide(rng) : softmax(rng);
    const float want = static_cast<float>(std::exp(static_cast<double>(x)));
    const float got = exp_det(x);
    if (std::isinf(want)) {
      EXPECT_TRUE(std::isinf(got)) << x;
      continue;
    }
    const int64_t d = ulps(got, want);
    ASSERT_LE(d, 1) << "x = " << x << " got " << got << " want " << want;
    off_by_one += d;
  }
  // Near-ties only: the polynomial's error is ~0.003 ulp.
  EXPECT_LT(off_by_one, n / 100);
}

TEST(ExpDet, EdgesAndSpecialValues) {
  EXPECT_EQ(exp_det(0.0f), 1.0f);
  EXPECT_EQ(exp_det(-0.0f), 1.0f);
  EXPECT_EQ(exp_det(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(exp_det(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(exp_det(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(exp_det(-200.0f), 0.0f);
  EXPECT_EQ(exp_det(100.0f), std::numeric_limits<float>::infinity());
  EXPECT_EQ(exp_det(1.0f), static_cast<float>(std::exp(1.0)));
  // Subnormal results round like the double value converted to F32.
  const float tiny = exp_det(-100.0f);
  EXPECT_GT(tiny, 0.0f);
  EXPECT_LE(ulps(tiny, static_cast<float>(std::exp(-100.0))), 1);
}

}  // namespace
}  // namespace loupe::kernels
