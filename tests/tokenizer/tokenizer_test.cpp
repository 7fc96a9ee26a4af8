// Tokenizer behaviour through the public API: special tokens, BOS/EOS, round trips, streaming
// decode, the vocabularies without golden files, bad vocabulary data.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <thread>

#include "common/testdata.h"
#include "model/vocab_load.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace loupe::tokenizer {
namespace {

using loupe::testing::testdata_path;

Tokenizer load(const std::string& relative) {
  auto file = gguf::File::open(testdata_path(relative));
  EXPECT_TRUE(file.has_value()) << file.status().message();
  auto tok = model::load_tokenizer(*file);
  EXPECT_TRUE(tok.has_value()) << tok.status().message();
  return std::move(tok).value();
}

std::vector<std::string> golden_inputs() {
  std::ifstream in(testdata_path("vocab/ggml-vocab-llama-spm.gguf.inp"), std::ios::binary);
  std::string raw(std::istreambuf_iterator<char>(in), {});
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  for (size_t pos = 0, next; pos < raw.size(); pos = next + sep.size()) {
    next = raw.find(sep, pos);
    if (next == std::string::npos) break;
    out.push_back(raw.substr(pos, next - pos));
  }
  return out;
}

// Extra inputs beyond the upstream corpus: mixed scripts, combining marks, emoji, numbers.
const std::vector<std::string> kExtraInputs = {
    "Héllo wörld, naïve café — “quotes” and ‘apostrophes’",
    "e\xCC\x81 n\xCC\x83 Z\xCD\x91"
    "alg\xCC\x88"
    "o",
    "日本語のテキストと中文和한국어",
    "Ünïcödé ÅNGSTRÖM İstanbul ǅemal",
    "1234567890 3.14159 1,000,000 ١٢٣",
    "emoji: 🦙🔥👩‍👩‍👧 🇫🇷",
    "tabs\tand\r\nwindows\n\n\nnewlines   spaces",
    "I'M YOU'RE we'll they'd IT'S",
    "CamelCaseIdentifiers HTTPServer getHTTPResponse",
    "<s> </s> <|im_start|> <|endoftext|> [CLS]",
    "    indented code();\n\tint x = a->b;",
};

TEST(Tokenizer, RoundTripWhereGuaranteed) {
  // detokenize(tokenize(x)) == x holds for byte-level BPE and for SPM with byte fallback
  // (a lossless encoding of the bytes) as long as nothing is normalized away. It does not hold
  // for WPM (lower-casing, accent stripping, "##" pieces) nor where clean_spaces rewrites
  // " ," style spacing (GPT-2, Llama 3, falcon, mpt, refact, starcoder, gpt-neox). Nor for a
  // SentencePiece vocabulary without a "▁" token (the tiny gemma4 test vocab): a space then
  // falls back to the bytes of U+2581, which llama.cpp decodes as "▁".
  LOUPE_REQUIRE_TESTDATA();
  std::vector<std::string> inputs = golden_inputs();
  inputs.insert(inputs.end(), kExtraInputs.begin(), kExtraInputs.end());
  for (const char* vocab :
       {"vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-phi-3.gguf",
        "vocab/ggml-vocab-qwen2.gguf", "vocab/ggml-vocab-deepseek-llm.gguf",
        "vocab/ggml-vocab-deepseek-coder.gguf", "vocab/ggml-vocab-baichuan.gguf",
        "models2026/qwen35-tok512.F16.gguf", "models2026/gpt-oss-tok512.F16.gguf"}) {
    Tokenizer tok = load(vocab);
    for (const std::string& text : inputs) {
      auto ids = tok.tokenize(text, false, false);
      EXPECT_EQ(tok.detokenize(ids, false, false), text) << vocab;
    }
  }
}

TEST(Tokenizer, RoundTripModuloCleanSpaces) {
  // With clean_spaces the round trip holds for text without " ?", " !", " .", " ,", " '".
  LOUPE_REQUIRE_TESTDATA();
  for (const char* vocab : {"vocab/ggml-vocab-gpt-2.gguf", "vocab/ggml-vocab-gpt-neox.gguf",
                            "vocab/ggml-vocab-llama-bpe.gguf", "vocab/ggml-vocab-falcon.gguf",
                            "vocab/ggml-vocab-mpt.gguf", "vocab/ggml-vocab-starcoder.gguf",
                            "vocab/ggml-vocab-refact.gguf"}) {
    Tokenizer tok = load(vocab);
    for (const std::string& text : {std::string("Hello world! It's 2024, isn't it?"),
                                    std::string("  leading\tand trailing  \n"),
                                    std::string("日本語 🦙 ünïcödé 1234567")}) {
      EXPECT_EQ(tok.detokenize(tok.tokenize(text, false, false), false, false), text) << vocab;
    }
  }
}

// No upstream goldens exist for baichuan (SPM, 64k) and gpt-neox (BPE without a `pre` key, so
// llama.cpp's "default" regexes). The ids below were checked by hand against their vocabularies
// (each piece looked up with token_text); the round-trip tests above cover them too.
TEST(Tokenizer, BaichuanAndGptNeox) {
  LOUPE_REQUIRE_TESTDATA();
  Tokenizer baichuan = load("vocab/ggml-vocab-baichuan.gguf");
  EXPECT_EQ(baichuan.kind(), TokenizerKind::kSpm);
  auto ids = baichuan.tokenize("Hello world", true, false);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), baichuan.bos());
  std::string pieces;
  for (size_t i = 1; i < ids.size(); ++i) pieces += baichuan.token_text(ids[i]) + "|";
  EXPECT_EQ(pieces, "▁Hello|▁world|");
  // Chinese text becomes whole-word pieces, no byte fallback needed.
  for (int32_t id : baichuan.tokenize("你好，世界", false, false))
    EXPECT_NE(baichuan.token_type(id), TokenType::kByte);

  Tokenizer neox = load("vocab/ggml-vocab-gpt-neox.gguf");
  EXPECT_EQ(neox.kind(), TokenizerKind::kBpe);
  EXPECT_EQ(neox.pre_name(), "default");
  std::string joined;
  for (int32_t id : neox.tokenize("Hello world, it's 12345!", false, false))
    joined += neox.token_text(id) + "|";
  // The default pre-tokenizer splits punctuation runs off first (so "'s" is two words), then
  // splits digits into runs of three.
  EXPECT_EQ(joined, "Hello|Ġworld|,|Ġit|'|s|Ġ|123|45|!|");
}

TEST(Tokenizer, SpecialTokensParsedOnlyWhenAsked) {
  LOUPE_REQUIRE_TESTDATA();
  Tokenizer tok = load("vocab/ggml-vocab-llama-bpe.gguf");
  const std::string text = "<|start_header_id|>user<|end_header_id|>";
  auto plain = tok.tokenize(text, false, false);
  auto parsed = tok.tokenize(text, false, true);
  ASSERT_EQ(parsed.size(), 3u);
  EXPECT_EQ(tok.token_text(parsed[0]), "<|start_header_id|>");
  EXPECT_EQ(tok.token_text(parsed[2]), "<|end_header_id|>");
  EXPECT_GT(plain.size(), 3u);
  for (int32_t id : plain) EXPECT_FALSE(tok.is_control(id));
  // Control tokens are hidden unless asked for.
  EXPECT_EQ(tok.detokenize(parsed, false, false), "user");
  EXPECT_EQ(tok.detokenize(parsed, false, true), text);
  EXPECT_EQ(tok.detokenize(plain, false, false), text);

  Tokenizer qwen = load("vocab/ggml-vocab-qwen2.gguf");
  auto im = qwen.tokenize("<|im_start|>system\nHi<|im_end|>", false, true);
  EXPECT_EQ(qwen.token_text(im.front()), "<|im_start|>");
  EXPECT_EQ(qwen.token_text(im.back()), "<|im_end|>");
  EXPECT_TRUE(qwen.is_eog(im.back()));
}

TEST(Tokenizer, BosEosPerFile) {
  LOUPE_REQUIRE_TESTDATA();
  Tokenizer spm = load("vocab/ggml-vocab-llama-spm.gguf");
  EXPECT_TRUE(spm.add_bos());
  auto ids = spm.tokenize("Hi", true, false);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(spm.tokenize("", true, false), std::vector<int32_t>{1});
  EXPECT_TRUE(spm.tokenize("", false, false).empty());
  EXPECT_NE(spm.tokenize("Hi", false, false).front(), 1);

  Tokenizer llama3 = load("vocab/ggml-vocab-llama-bpe.gguf");  // pre llama-bpe: add_bos
  EXPECT_EQ(llama3.tokenize("Hi", true, false).front(), 128000);
  EXPECT_TRUE(llama3.is_eog(128001));
  EXPECT_TRUE(llama3.is_eog(llama3.eot()));
  EXPECT_EQ(llama3.token_text(llama3.eot()), "<|eot_id|>");

  Tokenizer qwen = load("vocab/ggml-vocab-qwen2.gguf");  // no add_bos key: none added
  EXPECT_FALSE(qwen.add_bos());
  EXPECT_EQ(qwen.tokenize("Hi", true, false), qwen.tokenize("Hi", false, false));

  Tokenizer gemma4 = load("models2026/gemma4-tok512.F16.gguf");
  EXPECT_EQ(gemma4.tokenize("Hi", true, false).front(), 2);

  Tokenizer bert = load("vocab/ggml-vocab-bert-bge.gguf");  // [CLS] ... [SEP]
  auto b = bert.tokenize("hello", true, false);
  EXPECT_EQ(b.front(), 101);
  EXPECT_EQ(b.back(), 102);

  Tokenizer oss = load("models2026/gpt-oss-tok512.F16.gguf");
  EXPECT_TRUE(oss.is_eog(510));  // <|return|>
  EXPECT_TRUE(oss.is_eog(509));  // <|end|>: this vocabulary has no <|call|> (see below)
}

TEST(Tokenizer, HarmonyEndIsNotEndOfGeneration) {
  // With <|return|> and <|call|> present (o200k_harmony), <|end|> only ends a message.
  VocabData d;
  d.model = "gpt2";
  d.pre = "gpt-4o";
  d.tokens = {"a", "b", "<|start|>", "<|end|>", "<|return|>", "<|call|>", "<|im_end|>"};
  d.token_types = {1, 1, 3, 3, 3, 3, 3};
  d.eos = 4;
  auto tok = Tokenizer::create(d);
  ASSERT_TRUE(tok.has_value()) << tok.status().message();
  EXPECT_FALSE(tok->is_eog(3));
  EXPECT_TRUE(tok->is_eog(4));
  EXPECT_TRUE(tok->is_eog(5));
  EXPECT_TRUE(tok->is_eog(6));
  EXPECT_EQ(tok->token_to_piece(3, false), "<|end|>");  // now user-defined: always rendered
  EXPECT_EQ(tok->eot(), 6);
}

TEST(Tokenizer, LeadingSpaceRule) {
  LOUPE_REQUIRE_TESTDATA();
  Tokenizer spm = load("vocab/ggml-vocab-llama-spm.gguf");
  // SPM prefixes a space at the start and after each special token.
  auto ids = spm.tokenize("Hello", false, false);
  EXPECT_EQ(spm.token_text(ids.front()), "▁Hello");
  auto around = spm.tokenize("</s>Hello", false, true);
  ASSERT_EQ(around.size(), 2u);
  EXPECT_EQ(spm.token_text(around[1]), "▁Hello");
  // detokenize drops that space again, unless a BOS it removed came first.
  EXPECT_EQ(spm.detokenize(ids, false, false), "Hello");
  Tokenizer gemma3 = load("models2026/gemma3-tok512.F16.gguf");  // add_space_prefix = false
  auto he = gemma3.tokenize("He", false, false);
  EXPECT_EQ(gemma3.token_to_piece(he.front(), false), "H");
  EXPECT_EQ(gemma3.detokenize(he, false, false), "He");
}

TEST(StreamDecoder, HoldsBackPartialCharacters) {
  LOUPE_REQUIRE_TESTDATA();
  Tokenizer spm = load("vocab/ggml-vocab-llama-spm.gguf");
  // "🦙" has no token in Llama 2's vocabulary: four byte tokens.
  auto ids = spm.tokenize("a🦙b", false, false);
  ASSERT_GE(ids.size(), 6u);
  StreamDecoder dec(spm);
  std::string all, seen;
  for (int32_t id : ids) {
    std::string part = dec.push(id);
    EXPECT_EQ(complete_utf8_prefix(part), part.size()) << "half a character emitted";
    EXPECT_EQ(sanitize_utf8(part), part);
    all += part;
  }
  all += dec.flush();
  EXPECT_EQ(all, " a🦙b");

  // Bytes that never complete a character become U+FFFD, never raw.
  StreamDecoder broken(spm);
  std::string out = broken.push(spm.tokenize("\xF0", false, false).back());
  EXPECT_EQ(out, "");
  out += broken.push(spm.tokenize("a", false, false).back());
  out += broken.flush();
  EXPECT_EQ(out, "\xEF\xBF\xBD a");  // SPM: "a" is "▁a"
}

TEST(StreamDecoder, ByteLevelBpe) {
  LOUPE_REQUIRE_TESTDATA();
  Tokenizer tok = load("models2026/qwen35-tok512.F16.gguf");  // 512 tokens: mostly bytes
  const std::string text = "naïve 日本 🦙!";
  StreamDecoder dec(tok);
  std::string all;
  for (int32_t id : tok.tokenize(text, false, false)) {
    std::string part = dec.push(id);
    EXPECT_EQ(sanitize_utf8(part), part);
    all += part;
  }
  EXPECT_EQ(all + dec.flush(), text);
}

TEST(Tokenizer, BadVocabData) {
  VocabData d;
  d.model = "llama";
  auto r = Tokenizer::create(d);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("tokenizer.ggml.tokens"), std::string::npos);

  d.tokens = {"<unk>", "<s>", "</s>", "a"};
  d.model = "sentencepiece-v9";
  r = Tokenizer::create(d);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("unknown tokenizer model 'sentencepiece-v9'"),
            std::string::npos);

  d.model = "gpt2";
  d.pre = "no-such-pre";
  r = Tokenizer::create(d);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("no-such-pre"), std::string::npos);

  d.model = "llama";
  d.pre = "";
  d.scores = {0.0f};
  r = Tokenizer::create(d);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("tokenizer.ggml.scores"), std::string::npos);

  d.scores.clear();
  d.token_types = {2, 3};
  r = Tokenizer::create(d);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("tokenizer.ggml.token_type"), std::string::npos);

  d.token_types.clear();
  d.bos = 99;  // out of range: the default (1) stays
  r = Tokenizer::create(d);
  ASSERT_TRUE(r.has_value()) << r.status().message();
  EXPECT_EQ(r->bos(), 1);
  EXPECT_EQ(r->token_to_piece(12345, true), "");
  EXPECT_EQ(r->detokenize(std::vector<int32_t>{-5, 3, 99999}, false, false), "a");
}

TEST(Tokenizer, TinyInMemoryVocab) {
  // A hand-made SPM vocabulary: merges follow scores, unknown bytes fall back.
  VocabData d;
  d.model = "llama";
  d.tokens = {"<unk>", "<s>", "</s>", "<0x41>", "▁", "a", "b", "ab", "▁ab"};
  d.scores = {0, 0, 0, 0, -1, -2, -2, -1, -0.5f};
  d.token_types = {2, 3, 3, 6, 1, 1, 1, 1, 1};
  auto tok = Tokenizer::create(d);
  ASSERT_TRUE(tok.has_value()) << tok.status().message();
  EXPECT_EQ(tok->tokenize("ab", false, false), (std::vector<int32_t>{8}));
  EXPECT_EQ(tok->tokenize("abA", true, false), (std::vector<int32_t>{1, 8, 3}));
  EXPECT_EQ(tok->detokenize(std::vector<int32_t>{1, 8, 3}, true, false), " abA");
  EXPECT_EQ(tok->detokenize(std::vector<int32_t>{8, 3}, false, false), "abA");
}

TEST(Tokenizer, ThreadSafe) {
  LOUPE_REQUIRE_TESTDATA();
  Tokenizer tok = load("vocab/ggml-vocab-llama-bpe.gguf");
  const std::string text = "The quick brown fox jumps over the lazy dog 1234567 🦙 times.";
  const auto expected = tok.tokenize(text, true, false);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i)
        if (tok.tokenize(text, true, false) != expected) ++mismatches;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace loupe::tokenizer
