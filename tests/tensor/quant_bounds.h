// Expected quantization error per type, shared by the round-trip and the GGUF tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "tensor/dtype.h"

namespace loupe::testing {

// Upper bound on RMSE(dequantize(quantize(x)) - x) / RMS(x) for x ~ N(0, sigma) (the test
// models' weights are also normal). Derivation: a uniform quantizer of step s has error
// RMS s / sqrt(12). The expected |max| of 16, 32 and 256 normal samples is about 1.8, 2.1 and
// 2.9 sigma; so e.g. Q4_0 (s = amax / 8 over 32) gives 2.1 / 8 / 3.46 = 0.076 and Q8_0
// (s = amax / 127) 0.0048. Bounds are that model's value with ~25% margin, or the
// observed value of the least-squares types (K-quants, IQ4) with a similar margin. F16 and
// BF16 are exact bounds: round-to-nearest has relative error <= 2^-11 resp. 2^-8.
inline double relative_rmse_bound(DType type) {
  switch (type) {
    case DType::kF32:
      return 0.0;
    case DType::kF16:
      return 0x1p-11;
    case DType::kBF16:
      return 0x1p-8;
    case DType::kQ8_0:
      return 0.007;  // model 0.0048, observed 0.0054
    case DType::kQ8_1:
      return 0.007;  // same codes as Q8_0
    case DType::kQ4_0:
      return 0.10;  // model 0.076, observed 0.086
    case DType::kQ4_1:
      return 0.10;  // s = range / 15: model 0.081, observed 0.078
    case DType::kQ5_0:
      return 0.052;  // s = amax / 16: model 0.038, observed 0.043
    case DType::kQ5_1:
      return 0.05;  // s = range / 31: model 0.039, observed 0.038
    case DType::kQ2_K:
      return 0.35;  // 4 levels per 16 with a min: model 0.34, observed 0.30
    case DType::kQ3_K:
      return 0.18;  // 8 levels per 16: model 0.13, observed 0.15
    case DType::kQ4_K:
      return 0.09;  // 16 levels per 32 with a min: model 0.081, observed 0.071
    case DType::kQ5_K:
      return 0.045;  // 32 levels per 32 with a min: model 0.039, observed 0.036
    case DType::kQ6_K:
      return 0.022;  // s = amax / 32 per 16: model 0.016, observed 0.018
    case DType::kQ8_K:
      return 0.009;  // s = amax / 127 per 256: model 0.0066, observed 0.0070
    case DType::kIQ4_NL:
      return 0.09;  // 16 non-uniform levels per 32: observed 0.076
    case DType::kIQ4_XS:
      return 0.09;  // as IQ4_NL with 6-bit block scales: observed 0.077
    case DType::kMXFP4:
      return 0.14;  // E2M1 levels, power-of-two scale: observed 0.115
    default:
      return -1.0;
  }
}

struct ErrorStats {
  double sum_sq_err = 0;
  double sum_sq_ref = 0;
  int64_t n = 0;

  void add(const float* ref, const float* got, int64_t count) {
    for (int64_t i = 0; i < count; ++i) {
      const double e = static_cast<double>(got[i]) - ref[i];
      sum_sq_err += e * e;
      sum_sq_ref += static_cast<double>(ref[i]) * ref[i];
    }
    n += count;
  }
  double rmse() const { return n ? std::sqrt(sum_sq_err / n) : 0.0; }
  double relative_rmse() const { return sum_sq_ref > 0 ? std::sqrt(sum_sq_err / sum_sq_ref) : 0.0; }
};

}  // namespace loupe::testing
