// Ground truth from llama.cpp: testdata/models has F32 models and twins that llama-quantize
// (b4748, no imatrix) made from them. For every quantized twin tensor we check that
//   1. our dequantization of llama.cpp's bytes is within the type's error bound of the F32
//      tensor, and
//   2. our quantization of the F32 tensor reproduces llama.cpp's bytes (fraction of
//      identical blocks, expected 100%), and is at least as accurate.
#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "common/testdata.h"
#include "gguf/file.h"
#include "quant_bounds.h"
#include "tensor/quant.h"

namespace loupe {
namespace {

using testing::ErrorStats;
using testing::relative_rmse_bound;

struct TypeReport {
  int n_tensors = 0;
  ErrorStats ours;    // our quantization, dequantized, vs F32
  ErrorStats theirs;  // llama.cpp's quantization, dequantized (by us), vs F32
  int64_t n_blocks = 0;
  int64_t n_identical_blocks = 0;
};

// Compares every non-F32 tensor of `twin_file` against the same tensor of `f32_file`.
void compare_twin(const std::string& f32_file, const std::string& twin_file,
                  std::map<std::string, TypeReport>* reports) {
  auto f32 = gguf::File::open(testing::testdata_path("models/" + f32_file));
  ASSERT_TRUE(f32) << f32.status().message();
  auto twin = gguf::File::open(testing::testdata_path("models/" + twin_file));
  ASSERT_TRUE(twin) << twin.status().message();
  for (const gguf::TensorInfo& t : twin->tensors()) {
    if (t.type == DType::kF32) continue;
    SCOPED_TRACE(twin_file + ": " + t.name);
    const DType type = t.type;
    ASSERT_TRUE(can_dequantize(type) && can_quantize(type)) << dtype_name(type);
    const gguf::TensorInfo* ref = f32->find_tensor(t.name);
    ASSERT_NE(ref, nullptr);
    ASSERT_EQ(ref->type, DType::kF32);
    ASSERT_EQ(ref->ne, t.ne);

    const int64_t n = t.n_elements();
    const int64_t row = t.ne[0];
    const auto* x = reinterpret_cast<const float*>(ref->data);  // [n_rows, row]
    const uint8_t* theirs = t.data;
    const size_t row_bytes = dtype_row_size(type, row);

    // ggml quantizes row by row; blocks never straddle rows since row % block == 0.
    std::vector<uint8_t> ours(row_bytes * static_cast<size_t>(n / row));
    for (int64_t r = 0; r < n / row; ++r)
      quantize_row_ref(type, x + r * row, ours.data() + r * row_bytes, row);
    std::vector<float> y_ours(static_cast<size_t>(n)), y_theirs(static_cast<size_t>(n));
    dequantize_row_ref(type, ours.data(), y_ours.data(), n);
    dequantize_row_ref(type, theirs, y_theirs.data(), n);

    ErrorStats s_ours, s_theirs;
    s_ours.add(x, y_ours.data(), n);
    s_theirs.add(x, y_theirs.data(), n);
    EXPECT_LE(s_theirs.relative_rmse(), relative_rmse_bound(type));
    EXPECT_LE(s_ours.rmse(), s_theirs.rmse() * 1.0001);

    const size_t block_bytes = dtype_traits(type).type_size;
    const int64_t n_blocks = static_cast<int64_t>(ours.size() / block_bytes);
    int64_t identical = 0;
    for (int64_t b = 0; b < n_blocks; ++b)
      identical +=
          std::memcmp(ours.data() + b * block_bytes, theirs + b * block_bytes, block_bytes) == 0;
    EXPECT_EQ(identical, n_blocks) << "blocks differing from llama.cpp's";

    TypeReport& report = (*reports)[std::string(dtype_name(type))];
    report.n_tensors++;
    report.ours.add(x, y_ours.data(), n);
    report.theirs.add(x, y_theirs.data(), n);
    report.n_blocks += n_blocks;
    report.n_identical_blocks += identical;
  }
}

TEST(QuantGguf, MatchesLlamaQuantizeOnTestModels) {
  LOUPE_REQUIRE_TESTDATA();
  const std::pair<const char*, const char*> kTwins[] = {
      {"llama-tok512.F32.gguf", "llama-tok512.F16.gguf"},
      {"llama-tok512.F32.gguf", "llama-tok512.BF16.gguf"},
      {"llama-tok512.F32.gguf", "llama-tok512.Q8_0.gguf"},
      {"llama-tok512.F32.gguf", "llama-tok512.Q4_0.gguf"},
      {"llama-tok512.F32.gguf", "llama-tok512.Q4_K_M.gguf"},
      {"llama-tok512.F32.gguf", "llama-tok512.Q5_K_M.gguf"},
      {"llama-tok512.F32.gguf", "llama-tok512.Q6_K.gguf"},
      {"gemma2-tok512.F32.gguf", "gemma2-tok512.Q8_0.gguf"},
      {"phi3-tok512.F32.gguf", "phi3-tok512.Q4_K_M.gguf"},
  };
  std::map<std::string, TypeReport> reports;
  for (const auto& [f32_file, twin_file] : kTwins) compare_twin(f32_file, twin_file, &reports);

  std::printf("%-7s %9s %14s %14s %10s\n", "type", "tensors", "our RMSE", "llama RMSE",
              "identical");
  for (const auto& [name, r] : reports) {
    std::printf(
        "%-7s %9d %14.8f %14.8f %9.3f%%\n", name.c_str(), r.n_tensors, r.ours.rmse(),
        r.theirs.rmse(),
        100.0 * static_cast<double>(r.n_identical_blocks) / static_cast<double>(r.n_blocks));
  }
  // Every type the twins use must have been seen, so a renamed file cannot pass vacuously.
  for (const char* name : {"F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"})
    EXPECT_TRUE(reports.count(name)) << name;
}

}  // namespace
}  // namespace loupe
