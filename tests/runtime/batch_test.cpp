// Several sequences in one session: a batched forward pass gives every sequence the logits it
// gets alone (bit for bit), truncation rewinds attention caches but not recurrent states, and
// a malformed batch changes nothing.
#include <gtest/gtest.h>

#include <cstring>
#include <utility>

#include "common/testdata.h"
#include "model/arch.h"
#include "runtime/session.h"

namespace loupe {
namespace {

// A dense llama, a Mixtral-style MoE, the Gated DeltaNet hybrid (recurrent state per
// sequence), gemma3 (sliding window 24 on three of four layers) and gemma4 (shared KV).
const char* kModels[] = {"models/llama-tok512.Q4_K_M.gguf", "models/mixtral-tok512.Q4_K_M.gguf",
                         "models2026/qwen35-tok512.Q8_0.gguf", "models2026/gemma3-tok512.Q8_0.gguf",
                         "models2026/gemma4-tok512.Q4_K_M.gguf"};

std::vector<int32_t> some_tokens(int64_t n, int64_t n_vocab, int64_t salt) {
  std::vector<int32_t> t;
  for (int64_t i = 0; i < n; ++i)
    t.push_back(static_cast<int32_t>((1 + salt * 101 + i * 37) % n_vocab));
  return t;
}

std::unique_ptr<runtime::Session> session(const model::Model& m, int32_t n_seq,
                                          int64_t n_ctx = 96) {
  runtime::RunParams p;
  p.n_threads = 2;
  p.n_ctx = n_ctx;
  p.n_seq = n_seq;
  auto s = runtime::Session::create(m, p);
  EXPECT_TRUE(s.has_value()) << s.status().message();
  return s ? std::move(*s) : nullptr;
}

// Logits of every position of `tokens` evaluated alone from an empty sequence.
std::vector<float> alone(const model::Model& m, const std::vector<int32_t>& tokens) {
  auto s = session(m, 1);
  std::vector<int64_t> rows(tokens.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
  std::vector<float> out(tokens.size() * static_cast<size_t>(m.hp.n_vocab));
  Status st = s->eval(tokens, rows, out.data());
  EXPECT_TRUE(st.ok()) << st.message();
  return out;
}

TEST(Batch, EachSequenceGetsTheLogitsItGetsAlone) {
  LOUPE_REQUIRE_TESTDATA();
  for (const char* name : kModels) {
    auto m = model::load_model(testing::testdata_path(name));
    ASSERT_TRUE(m.has_value()) << m.status().message();
    const int64_t n_vocab = (*m)->hp.n_vocab;
    // Three sequences, fed in steps of mixed sizes (prompt chunks beside single decode
    // tokens, a sequence idle for a step, chunks not in sequence order), to 40+ positions so
    // the sliding windows slide.
    const std::vector<std::vector<std::pair<int32_t, int64_t>>> steps = {
        {{0, 11}, {1, 17}, {2, 5}}, {{2, 20}, {0, 1}},          {{1, 1}, {0, 1}, {2, 1}},
        {{0, 30}, {1, 1}},          {{2, 17}, {1, 22}, {0, 1}}, {{1, 1}, {2, 1}, {0, 1}}};
    std::vector<std::vector<int32_t>> all(3);
    for (const auto& step : steps)
      for (const auto& [seq, n] : step) all[seq].resize(all[seq].size() + n);
    for (int32_t seq = 0; seq < 3; ++seq) all[seq] = some_tokens(all[seq].size(), n_vocab, seq);
    std::vector<std::vector<float>> expected(3);
    for (int32_t seq = 0; seq < 3; ++seq) expected[seq] = alone(**m, all[seq]);

    auto s = session(**m, 3);
    std::vector<std::vector<int64_t>> rows(3);
    for (const auto& step : steps) {
      std::vector<runtime::SeqBatch> chunks;
      size_t n_rows = 0;
      for (const auto& [seq, n] : step) {
        rows[seq].resize(static_cast<size_t>(n));
        for (int64_t r = 0; r < n; ++r) rows[seq][r] = r;
        chunks.push_back(
            {seq, std::span<const int32_t>(all[seq]).subspan(s->n_past(seq), n), rows[seq]});
        n_rows += static_cast<size_t>(n);
      }
      std::vector<float> logits(n_rows * static_cast<size_t>(n_vocab));
      Status st = s->eval_batch(chunks, logits.data());
      ASSERT_TRUE(st.ok()) << name << ": " << st.message();
      const float* got = logits.data();
      for (const auto& [seq, n] : step) {
        const int64_t first = s->n_past(seq) - n;
        EXPECT_EQ(std::memcmp(got, expected[seq].data() + first * n_vocab,
                              static_cast<size_t>(n * n_vocab) * sizeof(float)),
                  0)
            << name << ": sequence " << seq << " positions " << first << ".." << first + n - 1;
        got += n * n_vocab;
      }
    }
    for (int32_t seq = 0; seq < 3; ++seq)
      EXPECT_EQ(s->n_past(seq), static_cast<int64_t>(all[seq].size()));
  }
}

TEST(Batch, TruncateThenEvalEqualsAFreshEval) {
  LOUPE_REQUIRE_TESTDATA();
  for (const char* name : {"models/llama-tok512.Q4_K_M.gguf", "models2026/gemma3-tok512.Q8_0.gguf",
                           "models/mixtral-tok512.Q4_K_M.gguf"}) {
    auto m = model::load_model(testing::testdata_path(name));
    ASSERT_TRUE(m.has_value());
    const int64_t n_vocab = (*m)->hp.n_vocab;
    const auto a = some_tokens(30, n_vocab, 1), b = some_tokens(25, n_vocab, 2),
               c = some_tokens(20, n_vocab, 3);
    auto s = session(**m, 2);
    EXPECT_TRUE(s->can_truncate());
    // Sequence 0 busy beside, to show truncation is per sequence.
    ASSERT_TRUE(s->eval(b, {}, nullptr).ok());
    std::vector<int32_t> ab = a;
    ab.insert(ab.end(), b.begin(), b.end());
    ASSERT_TRUE(s->eval_batch(std::vector<runtime::SeqBatch>{{1, ab, {}}}, nullptr).ok());
    ASSERT_TRUE(s->truncate(1, static_cast<int64_t>(a.size())).ok());
    EXPECT_EQ(s->n_past(1), 30);
    EXPECT_EQ(s->n_past(0), 25);
    std::vector<int64_t> rows(c.size());
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
    std::vector<float> got(c.size() * static_cast<size_t>(n_vocab));
    ASSERT_TRUE(s->eval_batch(std::vector<runtime::SeqBatch>{{1, c, rows}}, got.data()).ok());
    std::vector<int32_t> ac = a;
    ac.insert(ac.end(), c.begin(), c.end());
    const std::vector<float> fresh = alone(**m, ac);
    EXPECT_EQ(
        std::memcmp(got.data(), fresh.data() + a.size() * n_vocab, got.size() * sizeof(float)), 0)
        << name;
    // To 0: the same as a new sequence.
    ASSERT_TRUE(s->truncate(1, 0).ok());
    std::vector<float> again(c.size() * static_cast<size_t>(n_vocab));
    ASSERT_TRUE(s->eval_batch(std::vector<runtime::SeqBatch>{{1, c, rows}}, again.data()).ok());
    const std::vector<float> c_alone = alone(**m, c);
    EXPECT_EQ(std::memcmp(again.data(), c_alone.data(), again.size() * sizeof(float)), 0) << name;
    EXPECT_EQ(s->truncate(1, 21).code(), ErrorCode::kInvalidArgument);  // beyond n_past
    EXPECT_EQ(s->truncate(2, 0).code(), ErrorCode::kInvalidArgument);   // no such sequence
  }
}

TEST(Batch, RecurrentStateTruncatesOnlyToZeroOrWhole) {
  LOUPE_REQUIRE_TESTDATA();
  auto m = model::load_model(testing::testdata_path("models2026/qwen35-tok512.Q8_0.gguf"));
  ASSERT_TRUE(m.has_value());
  const int64_t n_vocab = (*m)->hp.n_vocab;
  auto s = session(**m, 2);
  EXPECT_FALSE(s->can_truncate());
  const auto a = some_tokens(20, n_vocab, 4), b = some_tokens(12, n_vocab, 5);
  ASSERT_TRUE(s->eval_batch(std::vector<runtime::SeqBatch>{{0, a, {}}, {1, b, {}}}, nullptr).ok());
  Status st = s->truncate(0, 10);
  EXPECT_EQ(st.code(), ErrorCode::kUnsupported);
  EXPECT_NE(st.message().find("recurrent"), std::string::npos) << st.message();
  EXPECT_EQ(s->n_past(0), 20);
  EXPECT_TRUE(s->truncate(0, 20).ok());
  EXPECT_EQ(s->n_past(0), 20);
  // Back to 0: the state restarts from zero, sequence 1's state is untouched.
  ASSERT_TRUE(s->truncate(0, 0).ok());
  const int64_t last = static_cast<int64_t>(b.size()) - 1;
  std::vector<float> got(2 * static_cast<size_t>(n_vocab));
  const auto c = some_tokens(5, n_vocab, 6);
  ASSERT_TRUE(
      s->eval_batch(
           std::vector<runtime::SeqBatch>{{0, b, std::span<const int64_t>(&last, 1)}, {1, c, {}}},
           got.data())
          .ok());
  const std::vector<float> b_alone = alone(**m, b);
  EXPECT_EQ(std::memcmp(got.data(), b_alone.data() + last * n_vocab, n_vocab * sizeof(float)), 0);
  std::vector<int32_t> bc = b;
  bc.insert(bc.end(), c.begin(), c.end());
  const std::vector<float> bc_alone = alone(**m, bc);
  const int64_t row = 0;
  const int32_t next = 7;
  ASSERT_TRUE(s->eval_batch(std::vector<runtime::SeqBatch>{{1, std::span<const int32_t>(&next, 1),
                                                            std::span<const int64_t>(&row, 1)}},
                            got.data())
                  .ok());
  bc.push_back(next);
  const std::vector<float> bcn_alone = alone(**m, bc);
  EXPECT_EQ(std::memcmp(got.data(), bcn_alone.data() + (bc.size() - 1) * n_vocab,
                        n_vocab * sizeof(float)),
            0);
}

TEST(Batch, AMalformedBatchChangesNothing) {
  LOUPE_REQUIRE_TESTDATA();
  auto m = model::load_model(testing::testdata_path("models/stories260K.gguf"));
  ASSERT_TRUE(m.has_value());
  auto s = session(**m, 2, 16);
  const auto a = some_tokens(10, 512, 1), b = some_tokens(10, 512, 2);
  ASSERT_TRUE(s->eval_batch(std::vector<runtime::SeqBatch>{{0, a, {}}}, nullptr).ok());
  auto expect_rejected = [&](std::vector<runtime::SeqBatch> chunks, ErrorCode code,
                             const char* what) {
    Status st = s->eval_batch(chunks, nullptr);
    EXPECT_EQ(st.code(), code) << what << ": " << st.message();
    EXPECT_NE(st.message().find(what), std::string::npos) << st.message();
    EXPECT_EQ(s->n_past(0), 10);
    EXPECT_EQ(s->n_past(1), 0);
  };
  // Sequence 1's chunk is fine, sequence 0's overflows its 16 cells: neither moves.
  expect_rejected({{1, b, {}}, {0, b, {}}}, ErrorCode::kOutOfRange, "context");
  expect_rejected({{1, b, {}}, {1, b, {}}}, ErrorCode::kInvalidArgument, "more than one chunk");
  expect_rejected({{2, b, {}}}, ErrorCode::kInvalidArgument, "sequence 2");
  expect_rejected({{-1, b, {}}}, ErrorCode::kInvalidArgument, "sequence -1");
  const std::vector<int32_t> bad = {1, 600};
  expect_rejected({{1, b, {}}, {0, bad, {}}}, ErrorCode::kInvalidArgument, "vocabulary");
  const int64_t far = 10;
  expect_rejected({{1, b, std::span<const int64_t>(&far, 1)}}, ErrorCode::kInvalidArgument,
                  "row 10");
  runtime::RunParams p;
  p.n_seq = 0;
  EXPECT_FALSE(runtime::Session::create(**m, p).has_value());
}

TEST(Batch, EvalHiddenGivesTheResultNormOfEveryToken) {
  LOUPE_REQUIRE_TESTDATA();
  auto m = model::load_model(testing::testdata_path("models/stories260K.gguf"));
  ASSERT_TRUE(m.has_value());
  struct Recorder : runtime::Observer {
    std::vector<float> result_norm;
    void observe(std::string_view name, const float* data, int64_t rows, int64_t cols) override {
      if (name == "result_norm") result_norm.assign(data, data + rows * cols);
    }
  } rec;
  const auto tokens = some_tokens(9, 512, 3);
  auto s = session(**m, 2);
  s->set_observer(&rec);
  std::vector<int64_t> rows(tokens.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
  std::vector<float> logits(tokens.size() * 512);
  ASSERT_TRUE(s->eval(tokens, rows, logits.data()).ok());
  ASSERT_EQ(rec.result_norm.size(), tokens.size() * 64);
  std::vector<float> hidden(tokens.size() * 64);
  ASSERT_TRUE(s->eval_hidden(1, tokens, hidden.data()).ok());
  EXPECT_EQ(hidden, rec.result_norm);
  EXPECT_EQ(s->n_past(1), 9);
}

}  // namespace
}  // namespace loupe
