// K-quant matmul kernels (Q4_K, Q5_K, Q6_K) at the edges of their integer ranges: every code
// at its extreme against activations at ±127, where a sum kept in 16 bits would wrap; and long
// rows, many panels and token counts crossing every tile, each token bit-identical to its
// single-token product on every ISA.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/matmul.h"
#include "simd/cpu.h"
#include "tensor/quant.h"

namespace loupe::kernels {
namespace {

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

const DType kTypes[] = {DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

// One super-block with every code equal to `code` (its type's all-zero or all-one bit
// pattern) and random scales.
void fill_block(DType type, bool max_codes, std::mt19937& rng, uint8_t* out) {
  std::uniform_int_distribution<int> byte(0, 255);
  const uint8_t fill = max_codes ? 0xff : 0x00;
  const uint16_t d = fp32_to_fp16(0.01f), dmin = fp32_to_fp16(0.02f);
  switch (type) {
    case DType::kQ4_K: {
      BlockQ4_K b;
      b.d = d;
      b.dmin = dmin;
      for (uint8_t& s : b.scales) s = static_cast<uint8_t>(byte(rng));
      std::memset(b.qs, fill, sizeof(b.qs));
      std::memcpy(out, &b, sizeof(b));
      break;
    }
    case DType::kQ5_K: {
      BlockQ5_K b;
      b.d = d;
      b.dmin = dmin;
      for (uint8_t& s : b.scales) s = static_cast<uint8_t>(byte(rng));
      std::memset(b.qh, fill, sizeof(b.qh));
      std::memset(b.qs, fill, sizeof(b.qs));
      std::memcpy(out, &b, sizeof(b));
      break;
    }
    case DType::kQ6_K: {
      BlockQ6_K b;
      b.d = d;
      for (int8_t& s : b.scales) s = static_cast<int8_t>(byte(rng) - 128);
      b.scales[0] = -128;
      b.scales[1] = 127;
      std::memset(b.ql, fill, sizeof(b.ql));
      std::memset(b.qh, fill, sizeof(b.qh));
      std::memcpy(out, &b, sizeof(b));
      break;
    }
    default:
      FAIL();
  }
}

// All codes at 0 or at their maximum, activations that quantize to +127 or -127 everywhere
// (Q8_K maps the element of largest magnitude onto -127·sign): the largest sums each integer
// step of the kernels can meet.
TEST(MatmulKQuant, ExtremeCodesAgainstFullScaleActivations) {
  IsaGuard guard;
  std::mt19937 rng(3);
  ThreadPool pool(2);
  const int64_t n_in = 2 * kQkK, n_out = 19, n_tokens = 10;
  for (simd::Isa isa : supported_isas()) {
    ASSERT_TRUE(simd::set_isa(isa));
    for (DType type : kTypes) {
      const size_t row = dtype_row_size(type, n_in);
      const size_t block = row / (n_in / kQkK);
      std::vector<uint8_t> storage(row * n_out + 1);
      uint8_t* data = storage.data() + 1;
      for (int64_t r = 0; r < n_out; ++r)
        for (int64_t b = 0; b < n_in / kQkK; ++b)
          fill_block(type, (r + b) % 2 == 0, rng, data + r * row + b * block);
      // Tokens: all +1, all -1, then random signs of magnitude 1.
      std::vector<float> x(static_cast<size_t>(n_in * n_tokens));
      std::uniform_int_distribution<int> coin(0, 1);
      for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t i = 0; i < n_in; ++i)
          x[t * n_in + i] = t == 0 ? 1.0f : t == 1 ? -1.0f : (coin(rng) ? 1.0f : -1.0f);
      Matrix m{type, data, n_in, n_out, row};
      std::vector<float> y(static_cast<size_t>(n_out * n_tokens));
      matmul(pool, m, x.data(), n_tokens, y.data());
      for (int64_t t = 0; t < n_tokens; ++t) {
        std::vector<float> alone(static_cast<size_t>(n_out));
        matmul(pool, m, x.data() + t * n_in, 1, alone.data());
        for (int64_t r = 0; r < n_out; ++r) {
          const float ref = matvec_row_ref(m, r, x.data() + t * n_in);
          const std::string what = std::string(simd::isa_name(isa)) + " " +
                                   std::string(dtype_name(type)) + " row " + std::to_string(r) +
                                   " token " + std::to_string(t);
          ASSERT_EQ(alone[r], y[t * n_out + r]) << what;
          ASSERT_NEAR(y[t * n_out + r], ref, 1e-5 * (1 + std::fabs(ref))) << what;
        }
      }
    }
  }
}

// Q4_K rows that read out one activation code each (code 1 at element e, scale 1, d = 1,
// dmin = 0): over one super-block every ISA then computes y[e] = d_a·q_e with the same single
// rounding, so equal bits on every ISA mean the activations were quantized to the same codes
// and scale as quantize_row_q8_k_ref: on exact ties, repeated maxima of either sign, NaN, zero.
TEST(MatmulKQuant, ActivationsQuantizeAsTheReferenceOnEveryIsa) {
  IsaGuard guard;
  const int64_t n = kQkK;
  std::vector<uint8_t> data(sizeof(BlockQ4_K) * n);
  for (int64_t e = 0; e < n; ++e) {
    BlockQ4_K b{};
    b.d = fp32_to_fp16(1.0f);
    b.dmin = 0;
    const uint8_t scales[12] = {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1};  // get_scale_min_k4: s=1, m=0
    std::memcpy(b.scales, scales, sizeof(scales));
    const int j = static_cast<int>(e / 32), l = static_cast<int>(e % 32);
    b.qs[32 * (j / 2) + l] = static_cast<uint8_t>(j % 2 ? 0x10 : 0x01);
    std::memcpy(data.data() + e * sizeof(BlockQ4_K), &b, sizeof(b));
  }
  Matrix m{DType::kQ4_K, data.data(), n, n, sizeof(BlockQ4_K)};
  std::mt19937 rng(23);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<std::vector<float>> tokens;
  for (float top : {-127.0f, 127.0f}) {  // iscale = ∓1: halves land on exact ties
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(i % 255 - 127) + 0.5f;
    x[n / 2] = top;
    tokens.push_back(x);
  }
  {
    std::vector<float> x(n);
    for (float& v : x) v = dist(rng);
    x[7] = 3.0f;
    x[100] = -3.0f;  // the first of two extremes gives the sign
    tokens.push_back(x);
    x[7] = -3.0f;
    x[100] = 3.0f;
    x[31] = std::nanf("");
    tokens.push_back(x);
  }
  tokens.push_back(std::vector<float>(n, 0.0f));
  for (int k = 0; k < 20; ++k) {
    std::vector<float> x(n);
    const float scale = std::ldexp(1.0f, k - 10);
    for (float& v : x) v = dist(rng) * scale;
    tokens.push_back(x);
  }
  ThreadPool pool(2);
  ASSERT_TRUE(simd::set_isa(simd::Isa::kScalar));
  std::vector<std::vector<float>> want;
  for (const auto& x : tokens) {
    std::vector<float> y(n);
    matmul(pool, m, x.data(), 1, y.data());
    want.push_back(y);
  }
  for (simd::Isa isa : supported_isas()) {
    ASSERT_TRUE(simd::set_isa(isa));
    for (size_t k = 0; k < tokens.size(); ++k) {
      std::vector<float> y(n);
      matmul(pool, m, tokens[k].data(), 1, y.data());
      for (int64_t e = 0; e < n; ++e)
        ASSERT_EQ(std::memcmp(&y[e], &want[k][e], sizeof(float)), 0)
            << simd::isa_name(isa) << " token " << k << " element " << e << ": " << y[e]
            << " vs " << want[k][e];
    }
  }
}

// Rows of 9 super-blocks, 3 full panels and a partial one, token counts around every tile and
// token-block edge, 1 and 2 threads: every output equals its single-token product.
TEST(MatmulKQuant, EveryTokenCountAgreesWithSingleTokens) {
  IsaGuard guard;
  std::mt19937 rng(17);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  ThreadPool pool1(1), pool2(2);
  const int64_t n_in = 9 * kQkK, n_out = 53, max_tokens = 130;
  std::vector<float> x(static_cast<size_t>(n_in * max_tokens));
  for (float& v : x) v = dist(rng);
  for (simd::Isa isa : supported_isas()) {
    ASSERT_TRUE(simd::set_isa(isa));
    for (DType type : kTypes) {
      const size_t row = dtype_row_size(type, n_in);
      std::vector<uint8_t> storage(row * n_out + 3);
      uint8_t* data = storage.data() + 3;
      std::vector<float> wf(static_cast<size_t>(n_in));
      for (int64_t r = 0; r < n_out; ++r) {
        for (float& v : wf) v = dist(rng);
        quantize_row_ref(type, wf.data(), data + r * row, n_in);
      }
      Matrix m{type, data, n_in, n_out, row};
      std::vector<float> single(static_cast<size_t>(n_out * max_tokens));
      for (int64_t t = 0; t < max_tokens; ++t)
        matmul(pool1, m, x.data() + t * n_in, 1, single.data() + t * n_out);
      for (int64_t n : {2, 7, 8, 9, 17, 64, 65, 130}) {
        for (ThreadPool* pool : {&pool1, &pool2}) {
          std::vector<float> y(static_cast<size_t>(n_out * n));
          matmul(*pool, m, x.data(), n, y.data());
          ASSERT_EQ(std::memcmp(y.data(), single.data(), y.size() * sizeof(float)), 0)
              << simd::isa_name(isa) << " " << dtype_name(type) << " tokens " << n
              << " threads " << pool->n_threads();
        }
      }
      for (int64_t t = 0; t < max_tokens; t += 13)
        for (int64_t r = 0; r < n_out; r += 5) {
          const float ref = matvec_row_ref(m, r, x.data() + t * n_in);
          ASSERT_NEAR(single[t * n_out + r], ref,
                      1e-4 * std::sqrt(static_cast<double>(n_in)) * (1 + std::fabs(ref)))
              << simd::isa_name(isa) << " " << dtype_name(type) << " row " << r << " token " << t;
        }
    }
  }
}

}  // namespace
}  // namespace loupe::kernels
