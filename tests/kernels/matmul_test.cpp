// Kernels against independent references: matmul for every weight type vs the tensor
// module's dequantizers in double; rope, softmax, norms and GELU on known values.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "simd/cpu.h"
#include "tensor/quant.h"

namespace loupe::kernels {
namespace {

const DType kWeightTypes[] = {DType::kF32,  DType::kF16,    DType::kBF16,   DType::kQ8_0,
                              DType::kQ4_0, DType::kQ4_1,   DType::kQ5_0,   DType::kQ5_1,
                              DType::kQ2_K, DType::kQ3_K,   DType::kQ4_K,   DType::kQ5_K,
                              DType::kQ6_K, DType::kIQ4_NL, DType::kIQ4_XS, DType::kMXFP4};

TEST(Matmul, EveryWeightTypeMatchesTheReference) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  ThreadPool pool(3);
  for (DType type : kWeightTypes) {
    ASSERT_TRUE(matmul_supports(type)) << dtype_name(type);
    const int64_t bs = dtype_traits(type).block_size;
    for (int64_t n_in : {bs, 2 * bs, int64_t{512}}) {
      if (n_in % bs != 0) continue;
      const int64_t n_out = 7, n_tokens = 3;
      std::vector<float> wf(static_cast<size_t>(n_in * n_out)),
          x(static_cast<size_t>(n_in * n_tokens));
      for (float& v : wf) v = dist(rng);
      for (float& v : x) v = dist(rng);
      const size_t row = dtype_row_size(type, n_in);
      // Misaligned rows: the weights start one byte into the buffer (GGUF only promises
      // alignment of the tensor start, blocks of odd size follow each other).
      std::vector<uint8_t> storage(row * static_cast<size_t>(n_out) + 1);
      uint8_t* data = storage.data() + (dtype_traits(type).type_size % 2 == 1 ? 1 : 0);
      for (int64_t r = 0; r < n_out; ++r)
        quantize_row_ref(type, wf.data() + r * n_in, data + r * row, n_in);
      Matrix m{type, data, n_in, n_out, row, nullptr};
      std::vector<float> y(static_cast<size_t>(n_out * n_tokens));
      matmul(pool, m, x.data(), n_tokens, y.data());
      for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t r = 0; r < n_out; ++r) {
          const float ref = matvec_row_ref(m, r, x.data() + t * n_in);
          EXPECT_NEAR(y[t * n_out + r], ref,
                      1e-4 * std::sqrt(static_cast<double>(n_in)) * (1 + std::fabs(ref)))
              << dtype_name(type) << " n_in " << n_in << " row " << r << " token " << t;
        }
    }
  }
}

// Restores the dispatch level a test forced.
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

// Every ISA this machine offers (forced in turn), every weight type, row lengths from one
// block up to 2N+1 blocks, 1..9 tokens (full register tiles and every remainder), weights
// and activations at odd addresses: against the double-precision reference; and each
// token's outputs are bit-identical whether it is alone or in a batch, on 1 or 3 threads.
TEST(Matmul, EveryIsaEveryTypeMatchesReferenceAndBatchesAgree) {
  IsaGuard guard;
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  ThreadPool pool1(1), pool3(3);
  for (simd::Isa isa : supported_isas()) {
    ASSERT_TRUE(simd::set_isa(isa));
    for (DType type : kWeightTypes) {
      const int64_t bs = dtype_traits(type).block_size;
      const std::vector<int64_t> lengths =
          bs == 1 ? std::vector<int64_t>{1, 7, 8, 31, 33, 64, 100, 257}
                  : std::vector<int64_t>{bs, 2 * bs, 3 * bs, 5 * bs, 9 * bs};
      for (int64_t n_in : lengths) {
        const int64_t n_out = 5, n_tokens = 9;
        std::vector<float> wf(static_cast<size_t>(n_in * n_out));
        std::vector<float> xs(static_cast<size_t>(n_in * n_tokens) + 1);
        for (float& v : wf) v = dist(rng);
        for (float& v : xs) v = dist(rng);
        const float* x = xs.data() + 1;  // activations at an odd float address
        const size_t row = dtype_row_size(type, n_in);
        std::vector<uint8_t> storage(row * static_cast<size_t>(n_out) + 3);
        uint8_t* data = storage.data() + 3;  // weights at an odd byte address
        for (int64_t r = 0; r < n_out; ++r)
          quantize_row_ref(type, wf.data() + r * n_in, data + r * row, n_in);
        Matrix m{type, data, n_in, n_out, row, nullptr};
        std::vector<float> batch(static_cast<size_t>(n_out * n_tokens)),
            batch3(batch.size());
        matmul(pool1, m, x, n_tokens, batch.data());
        matmul(pool3, m, x, n_tokens, batch3.data());
        EXPECT_EQ(batch, batch3) << simd::isa_name(isa) << " " << dtype_name(type) << " n_in " << n_in;
        for (int64_t t = 0; t < n_tokens; ++t) {
          std::vector<float> alone(static_cast<size_t>(n_out));
          matmul(pool3, m, x + t * n_in, 1, alone.data());
          for (int64_t r = 0; r < n_out; ++r) {
            EXPECT_EQ(alone[r], batch[t * n_out + r])
                << simd::isa_name(isa) << " " << dtype_name(type) << " n_in " << n_in << " token "
                << t << " row " << r;
            const float ref = matvec_row_ref(m, r, x + t * n_in);
            EXPECT_NEAR(alone[r], ref,
                        1e-4 * std::sqrt(static_cast<double>(n_in)) * (1 + std::fabs(ref)))
                << simd::isa_name(isa) << " " << dtype_name(type) << " n_in " << n_in << " row "
                << r << " token " << t;
          }
        }
      }
    }
  }
}

// Shapes that cross the kernels' tiles: 37 rows (two 16-row panels and a partial one, split
// across threads at odd places), 70 tokens (a 64-token block, full 8-token tiles and a
// remainder). Each token's outputs equal its single-token product bit for bit.
TEST(Matmul, PanelsAndTokenBlocksAgreeWithSingleTokens) {
  IsaGuard guard;
  std::mt19937 rng(13);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  ThreadPool pool1(1), pool3(3);
  for (simd::Isa isa : supported_isas()) {
    ASSERT_TRUE(simd::set_isa(isa));
    for (DType type : kWeightTypes) {
      const int64_t bs = dtype_traits(type).block_size;
      const int64_t n_in = bs == 1 ? 96 : 3 * std::max<int64_t>(bs, 32),
                    n_out = 37, n_tokens = 70;
      std::vector<float> wf(static_cast<size_t>(n_in * n_out)),
          x(static_cast<size_t>(n_in * n_tokens));
      for (float& v : wf) v = dist(rng);
      for (float& v : x) v = dist(rng);
      const size_t row = dtype_row_size(type, n_in);
      std::vector<uint8_t> storage(row * static_cast<size_t>(n_out) + 1);
      uint8_t* data = storage.data() + 1;
      for (int64_t r = 0; r < n_out; ++r)
        quantize_row_ref(type, wf.data() + r * n_in, data + r * row, n_in);
      Matrix m{type, data, n_in, n_out, row, nullptr};
      std::vector<float> batch(static_cast<size_t>(n_out * n_tokens)), batch3(batch.size());
      matmul(pool1, m, x.data(), n_tokens, batch.data());
      matmul(pool3, m, x.data(), n_tokens, batch3.data());
      const std::string what = std::string(simd::isa_name(isa)) + " " + std::string(dtype_name(type));
      ASSERT_EQ(batch, batch3) << what;
      for (int64_t t : {0, 7, 8, 9, 63, 64, 69}) {
        std::vector<float> alone(static_cast<size_t>(n_out));
        matmul(pool3, m, x.data() + t * n_in, 1, alone.data());
        for (int64_t r = 0; r < n_out; ++r) {
          ASSERT_EQ(alone[r], batch[t * n_out + r]) << what << " token " << t << " row " << r;
          const float ref = matvec_row_ref(m, r, x.data() + t * n_in);
          ASSERT_NEAR(alone[r], ref, 1e-4 * std::sqrt(static_cast<double>(n_in)) * (1 + std::fabs(ref)))
              << what << " token " << t << " row " << r;
        }
      }
    }
  }
}

TEST(Simd, ForcingALevelTheCpuLacksFails) {
  IsaGuard guard;
  EXPECT_TRUE(simd::set_isa(simd::Isa::kScalar));
  EXPECT_EQ(simd::active_isa(), simd::Isa::kScalar);
  EXPECT_EQ(simd::parse_isa("avx512"), simd::Isa::kAvx512);
  EXPECT_EQ(simd::parse_isa("neon9"), simd::Isa::kCount);
  EXPECT_FALSE(simd::set_isa(simd::Isa::kCount));
}

TEST(Matmul, VecDotTypesFollowGgml) {
  EXPECT_EQ(vec_dot_type(DType::kF16), DType::kF16);
  EXPECT_EQ(vec_dot_type(DType::kBF16), DType::kBF16);
  EXPECT_EQ(vec_dot_type(DType::kQ4_0), DType::kQ8_0);
  EXPECT_EQ(vec_dot_type(DType::kMXFP4), DType::kQ8_0);
  EXPECT_EQ(vec_dot_type(DType::kQ4_1), DType::kQ8_1);
  EXPECT_EQ(vec_dot_type(DType::kQ6_K), DType::kQ8_K);
  EXPECT_EQ(vec_dot_type(DType::kIQ4_XS), DType::kQ8_K);
  EXPECT_FALSE(matmul_supports(DType::kIQ2_XXS));
}

TEST(Ops, RmsNormSoftmaxGelu) {
  std::vector<float> x = {1, 2, 3, 4}, y(4);
  rms_norm(x.data(), nullptr, 0.0f, 4, y.data());
  const float s = 1.0f / std::sqrt(7.5f);
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(y[i], x[i] * s);
  std::vector<float> p = {0, std::log(3.0f)};
  softmax(p.data(), 2);
  EXPECT_NEAR(p[0], 0.25f, 1e-7);
  EXPECT_NEAR(p[1], 0.75f, 1e-7);
  EXPECT_EQ(gelu(-11.0f), 0.0f);
  EXPECT_EQ(gelu(12.5f), 12.5f);
  EXPECT_NEAR(gelu(1.0f), 0.8412f, 1e-3);
  EXPECT_EQ(gelu(1.0f), round_f16(gelu(1.0f)));  // the table holds F16 values
}

TEST(Ops, RopeRotatesPairs) {
  RopeParams p;
  p.n_dims = 4;
  p.freq_base = 10000.0f;
  std::vector<float> v = {1, 0, 1, 0};
  rope(p, 0, v.data(), 1, 4);
  EXPECT_FLOAT_EQ(v[0], 1);
  EXPECT_FLOAT_EQ(v[1], 0);
  rope(p, 1, v.data(), 1, 4);  // pair 0 by 1 rad, pair 1 by 0.01 rad
  EXPECT_NEAR(v[0], std::cos(1.0f), 1e-6);
  EXPECT_NEAR(v[1], std::sin(1.0f), 1e-6);
  EXPECT_NEAR(v[3], std::sin(0.01f), 1e-6);
  p.style = RopeStyle::kNeox;  // pairs (0, 2) and (1, 3)
  std::vector<float> w = {1, 1, 0, 0};
  rope(p, 1, w.data(), 1, 4);
  EXPECT_NEAR(w[2], std::sin(1.0f), 1e-6);
  EXPECT_NEAR(w[3], std::sin(0.01f), 1e-6);
}

TEST(Attention, SingleKeyCopiesValueAndWindowMasks) {
  ThreadPool pool(2);
  // Two positions, one head, dim 2: position 1 with window 1 sees only itself.
  std::vector<float> k = {1, 0, 0, 1}, v = {10, 20, 30, 40};
  KvView kv{DType::kF32,
            DType::kF32,
            reinterpret_cast<const uint8_t*>(k.data()),
            reinterpret_cast<const uint8_t*>(v.data()),
            8,
            8};
  AttentionParams ap;
  ap.n_head = ap.n_head_kv = 1;
  ap.head_dim_k = ap.head_dim_v = 2;
  ap.window = 1;
  std::vector<float> q = {5, 5, 5, 5}, out(4);
  int32_t pos[2] = {0, 1};
  attention(pool, ap, kv, q.data(), pos, 2, out.data());
  EXPECT_FLOAT_EQ(out[0], 10);
  EXPECT_FLOAT_EQ(out[2], 30);
  EXPECT_FLOAT_EQ(out[3], 40);
  ap.window = 0;
  attention(pool, ap, kv, q.data(), pos, 2, out.data());
  EXPECT_NEAR(out[2], 20, 1e-5);  // equal scores: the mean of both values
}

}  // namespace
}  // namespace loupe::kernels
