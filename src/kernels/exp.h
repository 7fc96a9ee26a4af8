// exp for F32 that every ISA computes to the same bits: the scalar function below and the
// vector versions in the x86 attention kernels run the same IEEE double operations (one
// multiply, one round-to-nearest, two FMAs for the reduction, nine FMAs of a degree-8
// Taylor polynomial on |r| <= ln2/2, an exact scaling by 2^n, one rounding to F32), so the
// attention kernels' softmax equals its scalar twin bit for bit. Its error before the final
// rounding is ~2e-10 relative (0.003 F32 ulp): the result is std::exp's correctly rounded
// value except within that distance of a tie.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace loupe::kernels {

namespace exp_detail {
constexpr float kLo = -104.0f;  // below: 0 (e^-104 is under half the smallest subnormal)
constexpr float kHi = 89.0f;    // above: +inf (e^89 > FLT_MAX)
constexpr double kLog2e = 1.4426950408889634;
constexpr double kLn2Hi = 0.6931471805599453;     // ln 2 rounded to double
constexpr double kLn2Lo = 2.3190468138462996e-17;  // ln 2 - kLn2Hi
// 1/k! for k = 0..8 (Horner from the top).
constexpr double kC[9] = {1.0,
                          1.0,
                          0.5,
                          0.16666666666666666,
                          0.041666666666666664,
                          0.008333333333333333,
                          0.001388888888888889,
                          0.0001984126984126984,
                          2.48015873015873e-05};
// n + kRound has n's two's complement in its low mantissa bits (|n| < 2^31): the bits of
// 2^n are ((those bits) + 1023) << 52, the high bits falling off the shift.
constexpr double kRound = 6755399441055744.0;  // 1.5 · 2^52
}  // namespace exp_detail

inline float exp_det(float x) {
  using namespace exp_detail;
  if (x != x) return x;
  if (x < kLo) return 0.0f;
  if (x > kHi) return INFINITY;
  const double xd = x;
  const double n = std::nearbyint(xd * kLog2e);
  double r = std::fma(-n, kLn2Hi, xd);
  r = std::fma(-n, kLn2Lo, r);
  double p = kC[8];
  for (int k = 7; k >= 0; --k) p = std::fma(p, r, kC[k]);
  const uint64_t bits = (std::bit_cast<uint64_t>(n + kRound) + 1023u) << 52;
  return static_cast<float>(p * std::bit_cast<double>(bits));
}

}  // namespace loupe::kernels
