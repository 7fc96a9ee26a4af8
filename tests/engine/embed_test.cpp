// engine::embed on stories260K: pooling of the result_norm rows the session's observer sees
// for the same tokens, unit norm when normalized, and a generation beside it undisturbed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/testdata.h"
#include "engine/embed.h"
#include "engine/model.h"

namespace loupe::engine {
namespace {

const Model& stories() {
  static std::unique_ptr<Model> m = [] {
    auto r = Model::load(testing::testdata_path("models/stories260K.gguf"));
    EXPECT_TRUE(r.has_value()) << r.status().message();
    return r ? std::move(*r) : nullptr;
  }();
  return *m;
}

std::unique_ptr<runtime::Session> session(int32_t n_seq = 1) {
  runtime::RunParams p;
  p.n_threads = 2;
  p.n_ctx = 64;
  p.n_seq = n_seq;
  auto s = runtime::Session::create(stories().weights(), p);
  EXPECT_TRUE(s.has_value()) << s.status().message();
  return std::move(*s);
}

// result_norm of every token, as the observer sees it when all rows' logits are asked for.
std::vector<float> observed_rows(const std::vector<int32_t>& tokens) {
  struct Recorder : runtime::Observer {
    std::vector<float> rows;
    void observe(std::string_view name, const float* data, int64_t n_rows,
                 int64_t n_cols) override {
      if (name == "result_norm") rows.assign(data, data + n_rows * n_cols);
    }
  } rec;
  auto s = session();
  s->set_observer(&rec);
  std::vector<int64_t> all(tokens.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  std::vector<float> logits(tokens.size() * 512);
  EXPECT_TRUE(s->eval(tokens, all, logits.data()).ok());
  return rec.rows;
}

TEST(Embed, PoolsTheResultNormRows) {
  LOUPE_REQUIRE_TESTDATA();
  const std::vector<int32_t> tokens =
      stories().tokenize_prompt("Once upon a time there was a cat", false);
  const size_t n = tokens.size(), n_embd = 64;
  const std::vector<float> rows = observed_rows(tokens);
  ASSERT_EQ(rows.size(), n * n_embd);
  std::vector<float> mean(n_embd, 0.0f);
  for (size_t t = 0; t < n; ++t)
    for (size_t j = 0; j < n_embd; ++j) mean[j] += rows[t * n_embd + j];
  for (float& e : mean) e /= static_cast<float>(n);

  auto s = session();
  auto got = embed(stories(), *s, tokens, Pooling::kMean, false);
  ASSERT_TRUE(got.has_value()) << got.status().message();
  ASSERT_EQ(got->size(), n_embd);
  for (size_t j = 0; j < n_embd; ++j) EXPECT_NEAR((*got)[j], mean[j], 1e-6f) << j;

  auto unit = embed(stories(), *s, tokens, Pooling::kMean, true);
  ASSERT_TRUE(unit.has_value());
  double norm = 0.0, mean_norm = 0.0;
  for (size_t j = 0; j < n_embd; ++j) {
    norm += static_cast<double>((*unit)[j]) * (*unit)[j];
    mean_norm += static_cast<double>(mean[j]) * mean[j];
  }
  EXPECT_NEAR(norm, 1.0, 1e-5);
  for (size_t j = 0; j < n_embd; ++j)
    EXPECT_NEAR((*unit)[j], mean[j] / std::sqrt(mean_norm), 1e-5) << j;

  auto first = embed(stories(), *s, tokens, Pooling::kCls, false);
  auto last = embed(stories(), *s, tokens, Pooling::kLast, false);
  ASSERT_TRUE(first.has_value() && last.has_value());
  EXPECT_EQ(*first, std::vector<float>(rows.begin(), rows.begin() + n_embd));
  EXPECT_EQ(*last, std::vector<float>(rows.end() - n_embd, rows.end()));
}

TEST(Embed, LeavesOtherSequencesAloneAndRejectsBadInput) {
  LOUPE_REQUIRE_TESTDATA();
  const std::vector<int32_t> a = stories().tokenize_prompt("Once upon a time", false);
  const std::vector<int32_t> b = stories().tokenize_prompt("The cat sat on the mat", false);
  // Sequence 0 generates while sequence 1 embeds: its next logits are as if alone.
  auto s = session(2);
  ASSERT_TRUE(s->eval(a, {}, nullptr).ok());
  ASSERT_TRUE(embed(stories(), *s, b, Pooling::kMean, true, 1).has_value());
  ASSERT_TRUE(embed(stories(), *s, b, Pooling::kMean, true, 1).has_value());  // resets first
  EXPECT_EQ(s->n_past(1), static_cast<int64_t>(b.size()));
  const int32_t next = 400;
  const int64_t row = 0;
  std::vector<float> got(512), want(512);
  ASSERT_TRUE(
      s->eval(std::span<const int32_t>(&next, 1), std::span<const int64_t>(&row, 1), got.data())
          .ok());
  auto alone = session();
  std::vector<int32_t> an = a;
  an.push_back(next);
  const int64_t last = static_cast<int64_t>(an.size()) - 1;
  ASSERT_TRUE(alone->eval(an, std::span<const int64_t>(&last, 1), want.data()).ok());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0);

  EXPECT_EQ(embed(stories(), *s, {}, Pooling::kMean, true).status().code(),
            ErrorCode::kInvalidArgument);
  const std::vector<int32_t> too_long(65, 400);
  auto r = embed(stories(), *s, too_long, Pooling::kMean, true);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), ErrorCode::kOutOfRange);
  EXPECT_NE(r.status().message().find("65"), std::string::npos);
  const std::vector<int32_t> bad = {1, 9999};
  EXPECT_EQ(embed(stories(), *s, bad, Pooling::kMean, true).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(embed(stories(), *s, a, Pooling::kMean, true, 2).status().code(),
            ErrorCode::kInvalidArgument);
}

TEST(Embed, PoolingNamesAndTheFilesDefault) {
  LOUPE_REQUIRE_TESTDATA();
  for (Pooling p : {Pooling::kMean, Pooling::kLast, Pooling::kCls}) {
    auto parsed = parse_pooling(pooling_name(p));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, p);
  }
  auto bad = parse_pooling("max");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.status().message().find("mean, last or cls"), std::string::npos);
  EXPECT_EQ(default_pooling(stories()), Pooling::kMean);  // stories260K has no pooling_type
}

}  // namespace
}  // namespace loupe::engine
