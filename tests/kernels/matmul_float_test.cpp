// F32 / F16 / BF16 weights on every ISA this machine offers: shapes that cross the float
// kernels' k chunks, row blocks and token tiles (and their tails) give each token the bits
// of its single-token product, and activations are rounded to F16 / BF16 as the scalar
// twin rounds them (ties to even, overflow to inf, NaN kept).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/matmul.h"
#include "simd/cpu.h"
#include "tensor/quant.h"

namespace loupe::kernels {
namespace {

const DType kFloatTypes[] = {DType::kF32, DType::kF16, DType::kBF16};

struct IsaGuard {
  simd::Isa saved = simd::active_isa();
  ~IsaGuard() { simd::set_isa(saved); }
};

std::vector<simd::Isa> supported_isas() {
  std::vector<simd::Isa> v;
  for (int i = 0; i < static_cast<int>(simd::Isa::kCount); ++i)
    if (simd::isa_supported(static_cast<simd::Isa>(i))) v.push_back(static_cast<simd::Isa>(i));
  return v;
}

uint32_t bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof(b));
  return b;
}

// 70 rows (a 64-row block, pairs, a single row), 53 tokens (a 48-token block, 12-token
// tiles, remainders of 4 and 5), rows of 1100 values (two 512-value chunks and a tail of 76,
// which ends in a partial 16-value vector).
TEST(MatmulFloat, ChunksBlocksAndTilesAgreeWithSingleTokens) {
  IsaGuard guard;
  std::mt19937 rng(17);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  ThreadPool pool1(1), pool3(3);
  const int64_t n_in = 1100, n_out = 70, n_tokens = 53;
  for (simd::Isa isa : supported_isas()) {
    ASSERT_TRUE(simd::set_isa(isa));
    for (DType type : kFloatTypes) {
      std::vector<float> wf(static_cast<size_t>(n_in * n_out)),
          xs(static_cast<size_t>(n_in * n_tokens) + 1);
      for (float& v : wf) v = dist(rng);
      for (float& v : xs) v = dist(rng);
      const float* x = xs.data() + 1;
      const size_t row = dtype_row_size(type, n_in);
      std::vector<uint8_t> storage(row * static_cast<size_t>(n_out) + 2);
      uint8_t* data = storage.data() + 2;
      for (int64_t r = 0; r < n_out; ++r)
        quantize_row_ref(type, wf.data() + r * n_in, data + r * row, n_in);
      Matrix m{type, data, n_in, n_out, row};
      // Outputs into a wider buffer (y_stride > n_out), as the model's fused projections do.
      const int64_t y_stride = n_out + 3;
      std::vector<float> batch(static_cast<size_t>(y_stride * n_tokens)), batch3(batch.size());
      matmul(pool1, m, x, n_tokens, batch.data(), y_stride);
      matmul(pool3, m, x, n_tokens, batch3.data(), y_stride);
      const std::string what =
          std::string(simd::isa_name(isa)) + " " + std::string(dtype_name(type));
      ASSERT_EQ(batch, batch3) << what;
      for (int64_t t : {0, 11, 12, 47, 48, 52}) {
        std::vector<float> alone(static_cast<size_t>(n_out));
        matmul(pool3, m, x + t * n_in, 1, alone.data());
        // Two and three tokens take the streaming path of one token.
        std::vector<float> few(static_cast<size_t>(3 * n_out));
        const int64_t t0 = std::min<int64_t>(t, n_tokens - 3);
        matmul(pool1, m, x + t0 * n_in, 3, few.data());
        for (int64_t r = 0; r < n_out; ++r) {
          ASSERT_EQ(bits(alone[r]), bits(batch[t * y_stride + r]))
              << what << " token " << t << " row " << r;
          ASSERT_EQ(bits(alone[r]), bits(few[(t - t0) * n_out + r]))
              << what << " token " << t << " row " << r;
          const float ref = matvec_row_ref(m, r, x + t * n_in);
          ASSERT_NEAR(alone[r], ref,
                      1e-4 * std::sqrt(static_cast<double>(n_in)) * (1 + std::fabs(ref)))
              << what << " token " << t << " row " << r;
        }
      }
    }
  }
}

// Weights pick one activation each (row r: 1 at column r), so y[r] is the activation as the
// kernel rounded it: ties, the smallest subnormals, overflow and NaN, against the scalar twin.
TEST(MatmulFloat, ActivationsRoundLikeTheScalarTwin) {
  IsaGuard guard;
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {
      1.0f + std::ldexp(1.0f, -11),      // F16 tie: to even (1)
      1.0f + 3 * std::ldexp(1.0f, -11),  // F16 tie: to even (1 + 2^-9)
      1.0f + std::ldexp(1.0f, -8),       // BF16 tie: to even (1)
      1.0f + 3 * std::ldexp(1.0f, -8),   // BF16 tie: to even (1 + 2^-6)
      -1.0f - std::ldexp(1.0f, -12),
      3e-8f,     // below F16's smallest subnormal / 2 + a bit
      6e-8f,     // F16 subnormal
      65520.0f,  // F16 overflow: inf
      70000.0f,
      -3.4e38f,  // BF16 rounds up to -inf
      1e-40f,    // F32 subnormal
      inf,
      -inf,
      0.1f,
      -0.0f,
      std::numeric_limits<float>::quiet_NaN(),
      1.17549435e-38f,
      123.456f,
  };
  const int64_t n = static_cast<int64_t>(x.size());
  ThreadPool pool(2);
  for (DType type : kFloatTypes) {
    std::vector<float> wf(static_cast<size_t>(n * n), 0.0f);
    for (int64_t r = 0; r < n; ++r) wf[r * n + r] = 1.0f;
    const size_t row = dtype_row_size(type, n);
    std::vector<uint8_t> data(row * static_cast<size_t>(n));
    for (int64_t r = 0; r < n; ++r)
      quantize_row_ref(type, wf.data() + r * n, data.data() + r * row, n);
    Matrix m{type, data.data(), n, n, row};
    // Each special value alone in its token, so 0·inf does not touch the other rows.
    std::vector<float> xs(static_cast<size_t>(n * n), 0.0f);
    for (int64_t t = 0; t < n; ++t) xs[t * n + t] = x[t];
    std::vector<float> expect(static_cast<size_t>(n * n));
    ASSERT_TRUE(simd::set_isa(simd::Isa::kScalar));
    matmul(pool, m, xs.data(), n, expect.data());
    for (simd::Isa isa : supported_isas()) {
      ASSERT_TRUE(simd::set_isa(isa));
      std::vector<float> y(expect.size());
      matmul(pool, m, xs.data(), n, y.data());
      for (int64_t t = 0; t < n; ++t) {
        const float e = expect[t * n + t], got = y[t * n + t];
        if (std::isnan(e))
          EXPECT_TRUE(std::isnan(got))
              << simd::isa_name(isa) << " " << dtype_name(type) << " " << x[t];
        else
          EXPECT_EQ(bits(e), bits(got))
              << simd::isa_name(isa) << " " << dtype_name(type) << " " << x[t];
      }
    }
  }
}

}  // namespace
}  // namespace loupe::kernels
