// `loupe tokenize` / `loupe detokenize` end to end (the CLI contract used by checks).
#include <gtest/gtest.h>

#include "common/process.h"
#include "common/testdata.h"

namespace loupe {
namespace {

using loupe::testing::run_loupe;
using loupe::testing::testdata_path;

TEST(TokenizeCli, IdsFromPromptAndStdin) {
  LOUPE_REQUIRE_TESTDATA();
  const std::string spm = testdata_path("vocab/ggml-vocab-llama-spm.gguf");
  auto r = run_loupe({"tokenize", "-m", spm, "--ids", "-p", "Hello world"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1 15043 3186\n");
  r = run_loupe({"tokenize", "-m", spm, "--ids", "--no-bos", "-p", "Hello world"});
  EXPECT_EQ(r.out, "15043 3186\n");
  // stdin, byte for byte (the trailing newline is text too).
  r = run_loupe({"tokenize", "-m", spm, "--ids", "--no-bos"}, "Hello world\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "15043 3186 13\n");
  r = run_loupe({"tokenize", "-m", spm, "--ids", "--no-bos"}, "");
  EXPECT_EQ(r.out, "\n");
}

TEST(TokenizeCli, ParseSpecialAndPieces) {
  LOUPE_REQUIRE_TESTDATA();
  const std::string bpe = testdata_path("vocab/ggml-vocab-llama-bpe.gguf");
  auto r = run_loupe(
      {"tokenize", "-m", bpe, "--ids", "--no-bos", "--parse-special", "-p", "<|eot_id|>"});
  EXPECT_EQ(r.out, "128009\n");
  r = run_loupe({"tokenize", "-m", bpe, "--ids", "--no-bos", "-p", "<|eot_id|>"});
  EXPECT_NE(r.out, "128009\n");
  r = run_loupe({"tokenize", "-m", bpe, "-p", "Hi there\n"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, " 128000  <|begin_of_text|>\n  13347  Hi\n   1070   there\n    198  \\n\n");
  r = run_loupe({"tokenize", "-m", bpe, "--show-special", "-p", "Hi there\n"});
  EXPECT_NE(r.out.find("[control]"), std::string::npos);
  EXPECT_NE(r.out.find("·there"), std::string::npos);
  EXPECT_NE(r.out.find("↵"), std::string::npos);
}

TEST(TokenizeCli, Detokenize) {
  LOUPE_REQUIRE_TESTDATA();
  const std::string bpe = testdata_path("vocab/ggml-vocab-llama-bpe.gguf");
  auto r = run_loupe({"detokenize", "-m", bpe, "128000", "13347", "1070"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Hi there");
  r = run_loupe({"detokenize", "-m", bpe, "--show-special", "128000", "13347", "1070"});
  EXPECT_EQ(r.out, "<|begin_of_text|>Hi·there\n");
  r = run_loupe({"detokenize", "-m", bpe}, "13347 1070\n");
  EXPECT_EQ(r.out, "Hi there");
  r = run_loupe({"detokenize", "-m", bpe, "999999"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("out of range"), std::string::npos);
}

TEST(TokenizeCli, Errors) {
  LOUPE_REQUIRE_TESTDATA();
  auto r = run_loupe({"tokenize", "-m", "/nonexistent.gguf", "-p", "x"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nonexistent.gguf"), std::string::npos);
  r = run_loupe({"tokenize", "-p", "x"});
  EXPECT_NE(r.exit_code, 0);  // usage: -m is required
  EXPECT_FALSE(r.signaled);
}

}  // namespace
}  // namespace loupe
