// Tokenization throughput on a long text (prints MB/s; asserts only a generous floor).
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>

#include "common/testdata.h"
#include "model/vocab_load.h"
#include "tokenizer/tokenizer.h"

namespace loupe::tokenizer {
namespace {

TEST(TokenizerSpeed, LongText) {
  LOUPE_REQUIRE_TESTDATA();
  // ~2 MB: the upstream test corpus (code, emoji, CJK, whitespace runs) plus English prose.
  std::ifstream in(loupe::testing::testdata_path("vocab/ggml-vocab-llama-spm.gguf.inp"),
                   std::ios::binary);
  std::string corpus(std::istreambuf_iterator<char>(in), {});
  corpus +=
      "The quick brown fox jumps over the lazy dog. It was the best of times, it was the "
      "worst of times; we had everything before us, we had nothing before us.\n";
  std::string text;
  while (text.size() < (2u << 20)) text += corpus;
  for (const char* vocab : {"vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-llama-bpe.gguf",
                            "vocab/ggml-vocab-qwen2.gguf", "vocab/ggml-vocab-gpt-2.gguf",
                            "vocab/ggml-vocab-bert-bge.gguf"}) {
    auto file = gguf::File::open(loupe::testing::testdata_path(vocab));
    ASSERT_TRUE(file.has_value());
    auto t0 = std::chrono::steady_clock::now();
    auto tok = model::load_tokenizer(*file);
    ASSERT_TRUE(tok.has_value());
    auto t1 = std::chrono::steady_clock::now();
    auto ids = tok->tokenize(text, false, false);
    auto t2 = std::chrono::steady_clock::now();
    std::string back = tok->detokenize(ids, false, false);
    auto t3 = std::chrono::steady_clock::now();
    double s_tok = std::chrono::duration<double>(t2 - t1).count();
    double s_detok = std::chrono::duration<double>(t3 - t2).count();
    double mb = text.size() / 1e6;
    std::cout << fmt::format(
        "  {:<34} load {:6.0f} ms  tokenize {:6.2f} MB/s  detokenize {:7.1f} MB/s  ({} tokens)\n",
        vocab, std::chrono::duration<double>(t1 - t0).count() * 1e3, mb / s_tok, mb / s_detok,
        ids.size());
    EXPECT_GT(mb / s_tok, 0.2);  // far below what any build reaches: catches pathologies only
  }
}

}  // namespace
}  // namespace loupe::tokenizer
