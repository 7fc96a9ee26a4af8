// Weights repacked at load (kernels::PackedWeights) give a model exactly the logits of the
// stored layout (LOUPE_NO_REPACK=1).
#include <stdlib.h>

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/testdata.h"
#include "model/arch.h"
#include "runtime/session.h"
#include "simd/cpu.h"

namespace loupe {
namespace {

std::vector<float> all_logits(const std::string& path, bool repack, size_t* packed_bytes) {
  if (repack)
    unsetenv("LOUPE_NO_REPACK");
  else
    setenv("LOUPE_NO_REPACK", "1", 1);
  auto m = model::load_model(path);
  unsetenv("LOUPE_NO_REPACK");
  EXPECT_TRUE(m.has_value()) << m.status().message();
  if (!m) return {};
  *packed_bytes = (*m)->packed.bytes();
  runtime::RunParams p;
  p.n_threads = 2;
  p.n_ctx = 64;
  auto s = runtime::Session::create(**m, p);
  EXPECT_TRUE(s.has_value());
  std::vector<int32_t> tokens;
  for (int i = 0; i < 20; ++i) tokens.push_back(1 + (i * 37) % 400);
  std::vector<int64_t> rows(tokens.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
  std::vector<float> out(tokens.size() * static_cast<size_t>((*m)->hp.n_vocab));
  EXPECT_TRUE((*s)->eval(tokens, rows, out.data()).ok());
  // Then token by token (the single-token path) on top.
  const int64_t row = 0;
  std::vector<float> one(static_cast<size_t>((*m)->hp.n_vocab));
  for (int i = 0; i < 5; ++i) {
    const int32_t t = 3 + i;
    EXPECT_TRUE((*s)->eval(std::span<const int32_t>(&t, 1), std::span<const int64_t>(&row, 1),
                           one.data())
                    .ok());
    out.insert(out.end(), one.begin(), one.end());
  }
  return out;
}

TEST(PackedModel, LogitsAreBitIdenticalWithAndWithoutRepacking) {
  LOUPE_REQUIRE_TESTDATA();
  for (const char* file : {"models/llama-tok512.Q4_0.gguf", "models/llama-tok512.Q8_0.gguf",
                           "models/mixtral-tok512.Q4_K_M.gguf",
                           "models2026/gpt-oss-tok512.MXFP4_MOE.gguf"}) {
    const std::string path = testing::testdata_path(file);
    size_t packed = 0, unpacked = 0;
    const std::vector<float> a = all_logits(path, true, &packed);
    const std::vector<float> b = all_logits(path, false, &unpacked);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << file;
    EXPECT_EQ(unpacked, 0u);
    const bool packable = std::string(file).find("Q4_K") == std::string::npos;
    if (simd::active_isa() == simd::Isa::kAvx512 && packable) {
      EXPECT_GT(packed, 0u) << file << ": nothing was packed";
    }
  }
}

}  // namespace
}  // namespace loupe
