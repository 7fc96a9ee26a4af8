// Session behaviour beyond conformance: bit-identical logits for any thread count,
// prefill == token-by-token decode, the context limit, the observer, and the CLI contract
// of `loupe logits` / `loupe run`.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "common/process.h"
#include "common/testdata.h"
#include "model/arch.h"
#include "runtime/session.h"

namespace loupe {
namespace {

std::vector<int32_t> some_tokens(int64_t n, int64_t n_vocab) {
  std::vector<int32_t> t;
  for (int64_t i = 0; i < n; ++i) t.push_back(static_cast<int32_t>((1 + i * 37) % n_vocab));
  return t;
}

std::vector<float> prefill(const model::Model& m, const std::vector<int32_t>& tokens, int threads,
                           DType cache = DType::kF16) {
  runtime::RunParams p;
  p.n_threads = threads;
  p.n_ctx = 64;
  p.cache_type_k = cache;
  p.cache_type_v = cache;
  auto s = runtime::Session::create(m, p);
  EXPECT_TRUE(s.has_value()) << s.status().message();
  std::vector<int64_t> rows(tokens.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
  std::vector<float> out(tokens.size() * static_cast<size_t>(m.hp.n_vocab));
  Status st = (*s)->eval(tokens, rows, out.data());
  EXPECT_TRUE(st.ok()) << st.message();
  return out;
}

// Dense quantized, MoE, sliding windows with post-norms, BF16, the DeltaNet hybrid with
// shared experts, and gemma4's shared KV / per-layer embeddings.
const char* kModels[] = {
    "models/llama-tok512.Q4_K_M.gguf",         "models/mixtral-tok512.Q4_K_M.gguf",
    "models2026/gemma3-tok512.Q8_0.gguf",      "models/llama-tok512.BF16.gguf",
    "models2026/qwen35moe-tok512.Q8_0.gguf",   "models2026/gemma4-tok512.Q4_K_M.gguf",
    "models2026/gpt-oss-tok512.MXFP4_MOE.gguf"};

TEST(Session, BitIdenticalForAnyThreadCount) {
  LOUPE_REQUIRE_TESTDATA();
  for (const char* name : kModels) {
    auto m = model::load_model(testing::testdata_path(name));
    ASSERT_TRUE(m.has_value()) << m.status().message();
    const auto tokens = some_tokens(40, (*m)->hp.n_vocab);
    const std::vector<float> one = prefill(**m, tokens, 1);
    for (int threads : {2, 4, 8}) {
      const std::vector<float> many = prefill(**m, tokens, threads);
      ASSERT_EQ(one.size(), many.size());
      EXPECT_EQ(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)), 0)
          << name << " differs with " << threads << " threads";
    }
  }
}

TEST(Session, PrefillEqualsTokenByTokenDecode) {
  LOUPE_REQUIRE_TESTDATA();
  for (const char* name : kModels) {
    auto m = model::load_model(testing::testdata_path(name));
    ASSERT_TRUE(m.has_value()) << m.status().message();
    const int64_t n_vocab = (*m)->hp.n_vocab;
    const auto tokens = some_tokens(30, n_vocab);
    for (DType cache : {DType::kF16, DType::kF32, DType::kQ8_0}) {
      const std::vector<float> batch = prefill(**m, tokens, 2, cache);
      runtime::RunParams p;
      p.n_threads = 2;
      p.n_ctx = 64;
      p.cache_type_k = cache;
      p.cache_type_v = cache;
      auto s = runtime::Session::create(**m, p);
      ASSERT_TRUE(s.has_value());
      std::vector<float> step(static_cast<size_t>(n_vocab));
      for (size_t t = 0; t < tokens.size(); ++t) {
        const int64_t row = 0;
        ASSERT_TRUE((*s)->eval(std::span<const int32_t>(&tokens[t], 1),
                               std::span<const int64_t>(&row, 1), step.data())
                        .ok());
        EXPECT_EQ(std::memcmp(step.data(), batch.data() + t * n_vocab, step.size() * sizeof(float)),
                  0)
            << name << " cache " << dtype_name(cache) << " position " << t;
      }
    }
  }
}

TEST(Session, ContextLimitAndBadTokensAreErrors) {
  LOUPE_REQUIRE_TESTDATA();
  auto m = model::load_model(testing::testdata_path("models/stories260K.gguf"));
  ASSERT_TRUE(m.has_value());
  runtime::RunParams p;
  p.n_ctx = 8;
  auto s = runtime::Session::create(**m, p);
  ASSERT_TRUE(s.has_value());
  std::vector<int32_t> tokens = some_tokens(6, 512);
  ASSERT_TRUE((*s)->eval(tokens, {}, nullptr).ok());
  Status st = (*s)->eval(tokens, {}, nullptr);
  EXPECT_EQ(st.code(), ErrorCode::kOutOfRange);
  EXPECT_NE(st.message().find("context"), std::string::npos) << st.message();
  EXPECT_EQ((*s)->n_past(), 6);
  std::vector<int32_t> bad = {1, 9999};
  (*s)->reset();
  EXPECT_EQ((*s)->eval(bad, {}, nullptr).code(), ErrorCode::kInvalidArgument);
  p.cache_type_k = DType::kQ8_0;  // head dim 8 cannot hold Q8_0 blocks
  auto q8 = runtime::Session::create(**m, p);
  ASSERT_FALSE(q8.has_value());
  EXPECT_NE(q8.status().message().find("multiple of 32"), std::string::npos);
}

TEST(Session, ObserverSeesNamedActivations) {
  LOUPE_REQUIRE_TESTDATA();
  auto m = model::load_model(testing::testdata_path("models/stories260K.gguf"));
  ASSERT_TRUE(m.has_value());
  struct Recorder : runtime::Observer {
    std::map<std::string, std::pair<int64_t, int64_t>> seen;
    std::vector<float> result_norm;
    void observe(std::string_view name, const float* data, int64_t rows, int64_t cols) override {
      seen[std::string(name)] = {rows, cols};
      if (name == "result_norm") result_norm.assign(data, data + rows * cols);
    }
  } rec;
  auto s = runtime::Session::create(**m, {});
  ASSERT_TRUE(s.has_value());
  (*s)->set_observer(&rec);
  std::vector<int32_t> tokens = {1, 400, 30};
  std::vector<int64_t> rows = {2};
  std::vector<float> logits(512);
  ASSERT_TRUE((*s)->eval(tokens, rows, logits.data()).ok());
  EXPECT_EQ(rec.seen["inp_embd"], (std::pair<int64_t, int64_t>{3, 64}));
  EXPECT_EQ(rec.seen["blk.4.attn_out"], (std::pair<int64_t, int64_t>{3, 64}));
  EXPECT_EQ(rec.seen["blk.0.q"], (std::pair<int64_t, int64_t>{3, 64}));
  EXPECT_EQ(rec.seen["blk.0.k"], (std::pair<int64_t, int64_t>{3, 32}));
  EXPECT_EQ(rec.seen["blk.2.ffn_out"], (std::pair<int64_t, int64_t>{3, 64}));
  EXPECT_EQ(rec.seen["result_output"], (std::pair<int64_t, int64_t>{1, 512}));
  EXPECT_EQ(rec.result_norm.size(), 64u);
}

TEST(Session, UnknownArchitectureAndMissingTensorsAreClearErrors) {
  LOUPE_REQUIRE_TESTDATA();
  auto m = model::load_model(testing::testdata_path("models/stories260K.gguf"));
  ASSERT_TRUE(m.has_value());
  gguf::File& f = *(*m)->file;
  model::Binder b(f);
  model::Weight w = b.req("blk.0.attn_q.weight", {64, 65});
  EXPECT_FALSE(static_cast<bool>(w));
  b.req("blk.0.nonexistent.weight", {64});
  Status st = b.status();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'blk.0.attn_q.weight' has shape [64, 64], expected [64, 65]"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("'blk.0.nonexistent.weight' is missing"), std::string::npos)
      << st.message();
}

// ---- CLI

std::vector<float> floats(const std::string& bytes) {
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

TEST(Cli, LogitsWritesFloat32Rows) {
  LOUPE_REQUIRE_TESTDATA();
  const std::string model = testing::testdata_path("models/stories260K.gguf");
  auto r = testing::run_loupe({"logits", "-m", model, "--tokens", "1,403,407", "--positions", "all",
                               "-t", "2", "--cache-type-k", "f32", "--cache-type-v", "f32"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.out.size(), 3u * 512 * 4);
  auto last = testing::run_loupe({"logits", "-m", model, "--tokens", "1,403,407"});
  ASSERT_EQ(last.exit_code, 0) << last.err;
  ASSERT_EQ(last.out.size(), 512u * 4);
  const std::string out = testing::temp_dir() + "/l.f32";
  auto some = testing::run_loupe(
      {"logits", "-m", model, "--tokens", "1,403,407", "--positions", "0,2", "-o", out});
  ASSERT_EQ(some.exit_code, 0) << some.err;
  std::ifstream in(out, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  ASSERT_EQ(bytes.size(), 2u * 512 * 4);
  const auto all = floats(r.out);
  const auto two = floats(bytes);
  // F16 and F32 caches agree closely; rows are the asked positions.
  for (int i = 0; i < 512; ++i) {
    EXPECT_NEAR(two[i], all[i], 1e-2);
    EXPECT_NEAR(two[512 + i], all[2 * 512 + i], 1e-2);
  }
  auto bad = testing::run_loupe({"logits", "-m", model, "--tokens", "1,x"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("--tokens"), std::string::npos) << bad.err;
  auto far = testing::run_loupe({"logits", "-m", model, "--tokens", "1,2", "--positions", "5"});
  EXPECT_EQ(far.exit_code, 1);
}

TEST(Cli, RunCompletesAStory) {
  LOUPE_REQUIRE_TESTDATA();
  const std::string model = testing::testdata_path("models/stories260K.gguf");
  auto r =
      testing::run_loupe({"run", "-m", model, "-p", "Once upon a time", "-n", "64", "--temp", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(
                ", there was a little girl named Lily. She loved to play outside in the park.", 0),
            0u)
      << r.out;
  EXPECT_NE(r.err.find("no chat template"), std::string::npos) << r.err;
  auto j = testing::run_loupe(
      {"run", "-m", model, "--tokens", "1,403,407", "-n", "5", "--temp", "0", "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto parsed = nlohmann::json::parse(j.out);
  EXPECT_EQ(parsed["tokens"].size(), 5u);
  EXPECT_TRUE(parsed["text"].is_string());
  auto hot = testing::run_loupe({"run", "-m", model, "-p", "x", "--temp", "0.7", "--top-k", "-2"});
  EXPECT_EQ(hot.exit_code, 0) << hot.err;
  auto bad = testing::run_loupe({"run", "-m", model, "-p", "x", "--temp", "-1", "--samplers", "nope"});
  EXPECT_EQ(bad.exit_code, 1);
}

}  // namespace
}  // namespace loupe
