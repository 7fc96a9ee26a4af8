// PackedWeights: matrices repacked at load give the same bits as the stored layout, for every
// token count, thread count and slice (experts) on the ISA that packs; other types, shapes
// and ISAs are left alone.
#include <gtest/gtest.h>

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

std::vector<uint8_t> random_weights(DType type, int64_t n_in, int64_t n_out, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const size_t row = dtype_row_size(type, n_in);
  std::vector<uint8_t> data(row * static_cast<size_t>(n_out));
  std::vector<float> wf(static_cast<size_t>(n_in));
  for (int64_t r = 0; r < n_out; ++r) {
    for (float& v : wf) v = dist(rng);
    quantize_row_ref(type, wf.data(), data.data() + r * row, n_in);
  }
  return data;
}

TEST(PackedWeights, SameBitsAsTheStoredLayoutForEveryBatchAndSlice) {
  if (!simd::isa_supported(simd::Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 here: nothing packs";
  IsaGuard guard;
  ASSERT_TRUE(simd::set_isa(simd::Isa::kAvx512));
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  ThreadPool pool1(1), pool3(3);
  for (DType type : {DType::kQ4_0, DType::kQ8_0, DType::kIQ4_NL, DType::kMXFP4}) {
    const int64_t n_in = 320, n_out = 48, n_expert = 3;  // 3 slices of 3 panels each
    const size_t row = dtype_row_size(type, n_in);
    std::vector<uint8_t> data = random_weights(type, n_in, n_out * n_expert, rng);
    // What each slice gives before anything is packed.
    std::vector<std::vector<float>> want;
    std::vector<float> x(static_cast<size_t>(n_in * 70));
    for (float& v : x) v = dist(rng);
    const int64_t token_counts[] = {1, 3, 8, 9, 70};
    for (int64_t e = 0; e < n_expert; ++e)
      for (int64_t n : token_counts) {
        Matrix m{type, data.data() + static_cast<size_t>(e * n_out) * row, n_in, n_out, row,
                 nullptr};
        std::vector<float> y(static_cast<size_t>(n * n_out));
        matmul(pool3, m, x.data(), n, y.data());
        want.push_back(std::move(y));
      }
    {
      PackedWeights packed;
      Matrix whole{type, data.data(), n_in, n_out * n_expert, row, nullptr};
      ASSERT_EQ(packed.add(whole), row * static_cast<size_t>(n_out * n_expert)) << dtype_name(type);
      // The stored bytes are no longer read: scribbling over them changes nothing.
      std::vector<uint8_t> saved = data;
      std::memset(data.data(), 0x5a, data.size());
      size_t k = 0;
      for (int64_t e = 0; e < n_expert; ++e)
        for (int64_t n : token_counts) {
          Matrix m{type, data.data() + static_cast<size_t>(e * n_out) * row, n_in, n_out, row,
                   nullptr};
          for (ThreadPool* pool : {&pool1, &pool3}) {
            std::vector<float> y(static_cast<size_t>(n * n_out));
            matmul(*pool, m, x.data(), n, y.data());
            EXPECT_EQ(std::memcmp(y.data(), want[k].data(), y.size() * sizeof(float)), 0)
                << dtype_name(type) << " expert " << e << " tokens " << n;
          }
          ++k;
        }
      data = saved;
    }
    // Unregistered when the PackedWeights goes: the stored layout is read again.
    std::memset(data.data(), 0, data.size());
    Matrix m{type, data.data(), n_in, n_out, row, nullptr};
    std::vector<float> y(static_cast<size_t>(n_out));
    matmul(pool1, m, x.data(), 1, y.data());
    for (float v : y) EXPECT_EQ(v, 0.0f);
  }
}

TEST(PackedWeights, LeavesWhatItCannotPackAlone) {
  IsaGuard guard;
  std::mt19937 rng(9);
  PackedWeights packed;
  // Q4_K has no packed layout; 40 rows are not whole panels.
  std::vector<uint8_t> k = random_weights(DType::kQ4_K, 256, 16, rng);
  EXPECT_EQ(packed.add({DType::kQ4_K, k.data(), 256, 16, dtype_row_size(DType::kQ4_K, 256),
                        nullptr}),
            0u);
  std::vector<uint8_t> q = random_weights(DType::kQ4_0, 64, 40, rng);
  EXPECT_EQ(packed.add({DType::kQ4_0, q.data(), 64, 40, dtype_row_size(DType::kQ4_0, 64),
                        nullptr}),
            0u);
  // No ISA but AVX-512 packs.
  if (simd::isa_supported(simd::Isa::kAvx2)) {
    ASSERT_TRUE(simd::set_isa(simd::Isa::kAvx2));
    std::vector<uint8_t> p = random_weights(DType::kQ4_0, 64, 32, rng);
    EXPECT_EQ(packed.add({DType::kQ4_0, p.data(), 64, 32, dtype_row_size(DType::kQ4_0, 64),
                          nullptr}),
              0u);
  }
  EXPECT_EQ(packed.bytes(), 0u);
}

}  // namespace
}  // namespace loupe::kernels
