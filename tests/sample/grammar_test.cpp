// GBNF parsing (errors with line/column), the matcher over code points and partial UTF-8, token
// filtering over a vocabulary and budget steering.
#include <gtest/gtest.h>

#include <random>

#include "sample_options.h"
#include "sample/grammar.h"
#include "sample/grammar_matcher.h"
#include "sample/sampler.h"

namespace loupe::sample {
namespace {

using testing::opts;

constexpr int32_t kEog = 256;

// Token b (1..255) is the single byte b; 256 is end-of-generation.
std::shared_ptr<const TokenVocab> byte_vocab() {
  static const auto vocab = [] {
    std::vector<std::string> pieces(257);
    for (int b = 1; b < 256; ++b)
      pieces[static_cast<size_t>(b)] = std::string(1, static_cast<char>(b));
    pieces[256] = "</s>";
    return TokenVocab::create(std::move(pieces), std::vector<int32_t>{kEog});
  }();
  return vocab;
}

ChainSetup setup_for(std::shared_ptr<const TokenVocab> vocab, std::shared_ptr<const Grammar> g) {
  ChainSetup s;
  s.n_vocab = vocab->n_vocab();
  s.vocab = std::move(vocab);
  s.grammar = std::move(g);
  return s;
}

std::shared_ptr<const Grammar> parse(const std::string& text) {
  auto g = Grammar::parse(text);
  EXPECT_TRUE(g.has_value()) << g.status().message();
  return g.has_value() ? std::make_shared<const Grammar>(std::move(*g)) : nullptr;
}

bool matches(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  GrammarMatcher m(g, byte_vocab());
  for (unsigned char c : text) {
    if (!m.accept(c).ok()) return false;
  }
  return m.accepting();
}

std::string parse_error(const std::string& text) {
  auto g = Grammar::parse(text);
  EXPECT_FALSE(g.has_value()) << "parsed: " << text;
  return g.has_value() ? "" : g.status().message();
}

TEST(GrammarParse, ErrorsSayWhereAndWhat) {
  EXPECT_EQ(parse_error("root ::= foo\n"), "grammar:1:10: undefined rule 'foo'");
  EXPECT_EQ(parse_error("root ::= \"a\"\nx ::= \"abc\n"),
            "grammar:2:7: unterminated string literal");
  EXPECT_EQ(parse_error("root := \"a\""), "grammar:1:6: expected '::=' after rule name 'root'");
  EXPECT_EQ(parse_error("root ::= [a-z"), "grammar:1:10: unterminated character class");
  EXPECT_EQ(parse_error("foo ::= \"a\""), "grammar: no rule named 'root' (the start rule)");
  EXPECT_EQ(parse_error("root ::= * \"a\""), "grammar:1:10: '*' must follow an item");
  EXPECT_EQ(parse_error("root ::= \"\\q\""),
            "grammar:1:11: unknown escape '\\q' (known: \\x \\u \\U \\t \\n \\r \\\\ \\\" \\[ \\] "
            "\\- \\^)");
  EXPECT_EQ(parse_error("root ::= ( \"a\" "),
            "grammar:1:10: expected ')' to close the group opened here");
  EXPECT_EQ(parse_error("root ::= \"a\"{3,2}"), "grammar:1:13: repetition {3,2} has max < min");
  EXPECT_EQ(parse_error("root ::= \"a\"{99999}"),
            "grammar:1:14: repetition count exceeds the limit of 10000");
  EXPECT_EQ(parse_error("root ::= \"a\"\nroot ::= \"b\""),
            "grammar:2:1: rule 'root' is defined twice (first at 1:1)");
  EXPECT_EQ(parse_error("root ::= [z-a]"), "grammar:1:10: range U+7A-U+61 is reversed");
  EXPECT_EQ(
      parse_error("root ::= \"a\" ) \"b\""),
      "grammar:1:14: unexpected ')' in rule 'root': expected an item, '|' or the end of the line");
  const std::string left =
      parse_error("root ::= expr\nexpr ::= expr \"+\" term | term\nterm ::= [0-9]\n");
  EXPECT_NE(left.find("'expr' is left-recursive"), std::string::npos) << left;
  EXPECT_NE(left.find("grammar:2:1"), std::string::npos) << left;
  // Left recursion through a nullable prefix.
  EXPECT_NE(parse_error("root ::= a\na ::= b? a \"x\" | \"y\"\nb ::= \"z\"").find("left-recursive"),
            std::string::npos);
}

TEST(GrammarParse, Syntax) {
  // Comments, newlines inside groups, escapes, any-char, classes with ranges and negation.
  auto g = parse(R"(# a comment
root ::= greeting ( " " name )?   # trailing comment
greeting ::= "hi" | "hello"
name ::= [A-Z] [a-z\-]* | (
  "\x41" "\u00e9" "\U0001F600"
)
)");
  EXPECT_TRUE(matches(g, "hi"));
  EXPECT_TRUE(matches(g, "hello Ann-marie"));
  EXPECT_TRUE(matches(g, "hi A\xC3\xA9\xF0\x9F\x98\x80"));
  EXPECT_FALSE(matches(g, "hi ann"));
  EXPECT_FALSE(matches(g, "hey"));
  auto any = parse("root ::= . [^a-c\\n] [^]");
  EXPECT_TRUE(matches(any,
                      "\n\xE2\x82\xAC"
                      "d"));
  EXPECT_FALSE(matches(any, "xb!"));
  EXPECT_FALSE(matches(any, "x\n!"));
}

TEST(GrammarParse, Repetitions) {
  auto g = parse("root ::= \"a\"{2,3} \"b\"{2} \"c\"{1,} \"d\"{0,1}");
  EXPECT_TRUE(matches(g, "aabbc"));
  EXPECT_TRUE(matches(g, "aaabbcccd"));
  EXPECT_FALSE(matches(g, "abbc"));
  EXPECT_FALSE(matches(g, "aaaabbc"));
  EXPECT_FALSE(matches(g, "aabc"));
  EXPECT_FALSE(matches(g, "aabb"));
  EXPECT_FALSE(matches(g, "aabbcdd"));
  auto h = parse("root ::= (\"ab\" | \"c\")* \"x\"+ \"y\"?");
  EXPECT_TRUE(matches(h, "x"));
  EXPECT_TRUE(matches(h, "abcabxxy"));
  EXPECT_FALSE(matches(h, "aby"));
  EXPECT_FALSE(matches(h, "abcab"));
}

TEST(GrammarParse, PrintRoundTrips) {
  auto g = parse("root ::= \"a\\\"\" [^\\]x-z] item{0,2}\nitem ::= \"\\n\" | [\\x00-\\x1f]\n");
  auto again = parse(g->print());
  for (const std::string s : {"a\"b", "a\"]", "a\"b\n\n", "a\"b\x01\n", "a\"x", "a\"b\n\n\n"}) {
    EXPECT_EQ(matches(g, s), matches(again, s)) << s;
  }
  EXPECT_TRUE(matches(g, "a\"b\n\x02"));
  EXPECT_FALSE(matches(g, "a\"y"));
}

TEST(GrammarMatcher, PartialUtf8AcrossTokens) {
  auto g = parse("root ::= \"\xC3\xA9\" | \"\xC3\xBC\" \"!\"");
  GrammarMatcher m(g, byte_vocab());
  EXPECT_TRUE(m.allows(0xC3, -1));
  EXPECT_FALSE(m.allows(0xA9, -1));  // a continuation byte cannot start
  EXPECT_FALSE(m.allows(0xC4, -1));  // U+0100.. never matches
  EXPECT_FALSE(m.allows(kEog, -1));
  ASSERT_TRUE(m.accept(0xC3).ok());
  EXPECT_FALSE(m.accepting());
  EXPECT_TRUE(m.allows(0xA9, -1));
  EXPECT_TRUE(m.allows(0xBC, -1));
  EXPECT_FALSE(m.allows(0xA8, -1));
  ASSERT_TRUE(m.accept(0xA9).ok());
  EXPECT_TRUE(m.accepting());
  EXPECT_TRUE(m.finished());
  EXPECT_TRUE(m.allows(kEog, -1));
  EXPECT_FALSE(m.accept('!').ok());
}

TEST(GrammarMatcher, RejectsMalformedUtf8) {
  // [^"] admits any code point, but not overlong forms, surrogates or stray bytes.
  auto g = parse("root ::= [^\"]*");
  EXPECT_TRUE(matches(g, "\xE2\x82\xAC\xF0\x9F\x98\x80"));
  EXPECT_FALSE(matches(g, "\xC1\x81"));          // overlong 'A'
  EXPECT_FALSE(matches(g, "\xE0\x80\x80"));      // overlong NUL
  EXPECT_FALSE(matches(g, "\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(matches(g, "\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(matches(g, "\x80"));
  GrammarMatcher m(g, byte_vocab());
  ASSERT_TRUE(m.accept(0xE0).ok());
  EXPECT_FALSE(m.allows(0x80, -1));  // E0 80 can never complete
  EXPECT_TRUE(m.allows(0xA0, -1));
  EXPECT_FALSE(m.accepting());  // mid-character
  EXPECT_FALSE(m.allows(kEog, -1));
}

std::shared_ptr<const TokenVocab> word_vocab() {
  // A few multi-byte tokens, including ones that straddle grammar items.
  return TokenVocab::create({"a", "b", "ab", "[", "]", ",", "[a", "a,", "],", "x", "\xC3", "\xA9",
                             "\xC3\xA9", "", "</s>", "]]", ",a]"},
                            std::vector<int32_t>{14});
}

std::vector<int32_t> allowed(GrammarMatcher& m, int32_t n_vocab, int32_t n_remaining = -1) {
  Candidates c;
  for (int32_t i = 0; i < n_vocab; ++i) c.data.push_back({i, 0.0f, 0.0f});
  if (!m.filter(c, n_remaining).ok()) return {};
  std::vector<int32_t> ids;
  for (const auto& x : c.data) ids.push_back(x.id);
  return ids;
}

TEST(GrammarMatcher, FiltersWholeTokens) {
  auto g = parse("root ::= \"[\" ( \"a\" ( \",\" \"a\" )* )? \"]\"");
  auto vocab = word_vocab();
  GrammarMatcher m(g, vocab);
  EXPECT_EQ(allowed(m, vocab->n_vocab()), (std::vector<int32_t>{3, 6}));  // "[" "[a"
  ASSERT_TRUE(m.accept(6).ok());
  // After "[a": "," "]" "a," "]," (no: "]," leaves ',' after the end) ",a]"
  EXPECT_EQ(allowed(m, vocab->n_vocab()), (std::vector<int32_t>{4, 5, 16}));
  ASSERT_TRUE(m.accept(16).ok());
  EXPECT_EQ(allowed(m, vocab->n_vocab()), (std::vector<int32_t>{14}));  // only end-of-generation
  EXPECT_TRUE(m.accepting());
  EXPECT_FALSE(m.accept(4).ok());
  ASSERT_TRUE(m.accept(14).ok());
  EXPECT_FALSE(m.allows(14, -1));  // nothing after the end
  m.reset();
  EXPECT_EQ(allowed(m, vocab->n_vocab()), (std::vector<int32_t>{3, 6}));
  // Never the empty-piece token, and end-of-generation only when complete.
  EXPECT_FALSE(m.allows(13, -1));
  EXPECT_FALSE(m.accept(14).ok());
}

TEST(GrammarMatcher, BudgetSteersToTheShortestCompletion) {
  // root ::= "[" items "]" with many optional items: with 3 tokens left after "[a" the only way
  // out within budget closes the list.
  auto g = parse("root ::= \"[\" ( \"a\" ( \",\" \"a\" )* )? \"]\"");
  auto vocab = word_vocab();
  GrammarMatcher m(g, vocab);
  ASSERT_TRUE(m.accept(6).ok());  // "[a"
  EXPECT_EQ(m.min_remaining_bytes(), 1u);
  EXPECT_EQ(m.shortest_completion(), "]");
  // One token left: it must close the list ("]" or ",a]").
  EXPECT_EQ(allowed(m, vocab->n_vocab(), 1), (std::vector<int32_t>{4, 16}));
  // Two left: "," is fine too (then "a]" ... no: "," needs "a" and "]" = 2 bytes > 1 token).
  EXPECT_EQ(allowed(m, vocab->n_vocab(), 2), (std::vector<int32_t>{4, 16}));
  EXPECT_EQ(allowed(m, vocab->n_vocab(), 3), (std::vector<int32_t>{4, 5, 16}));
}

TEST(GrammarMatcher, BudgetBelowTheByteBoundUsesMultiByteTokens) {
  // Shortest completion of "[" is "]"; from the start it is "[]" = 2 bytes, but the vocabulary
  // has no "[]" token: with 1 token the budget is impossible, with 2 it is met exactly.
  auto g = parse("root ::= \"[\" \"a\"{3} \"]\"");
  auto vocab = word_vocab();
  GrammarMatcher m(g, vocab);
  EXPECT_EQ(m.min_remaining_bytes(), 5u);
  // 3 tokens < 5 bytes, but "[a" "a," ... : "[a" + "a" + "a]"? no such token; greedy:
  // "[a","a","a","]" = 4.
  Candidates c;
  for (int32_t i = 0; i < vocab->n_vocab(); ++i) c.data.push_back({i, 0.0f, 0.0f});
  const Status s = m.filter(c, 3);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kOutOfRange);
  EXPECT_NE(s.message().find("\"[aaa]\" needs 4"), std::string::npos) << s.message();
  EXPECT_EQ(allowed(m, vocab->n_vocab(), 4), (std::vector<int32_t>{6}));  // "[a" is the only way
}

TEST(GrammarMatcher, ByteVocabularyGeneratesWithinBudget) {
  // A recursive grammar with random choices and a budget: output always complete and valid.
  auto g = parse(R"(root ::= value
value ::= "[" ( value ( "," value )* )? "]" | [0-9]+
)");
  auto vocab = byte_vocab();
  for (uint32_t seed = 0; seed < 20; ++seed) {
    SamplerParams p;
    p.seed = seed;
    p.temp = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    auto chain = SamplerChain::create(p, setup_for(vocab, g));
    ASSERT_TRUE(chain.has_value());
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-3.0f, 3.0f);
    std::vector<float> logits(static_cast<size_t>(vocab->n_vocab()));
    const int budget = 12 + static_cast<int>(seed);
    std::string out;
    bool ended = false;
    for (int i = 0; i < budget && !ended; ++i) {
      for (auto& x : logits) x = u(rng);
      logits['['] += 4.0f;  // lean towards nesting so the budget matters
      auto r = chain->sample(logits, opts(false, 0, budget - i));
      ASSERT_TRUE(r.has_value()) << r.status().message();
      ASSERT_TRUE(chain->accept(r->token).ok());
      if (r->token == kEog) {
        ended = true;
      } else {
        out += static_cast<char>(r->token);
      }
    }
    EXPECT_TRUE(chain->grammar()->accepting()) << out;
    EXPECT_TRUE(matches(g, out)) << out;
    EXPECT_LE(out.size(), static_cast<size_t>(budget));
  }
}

TEST(GrammarMatcher, GrammarFirstAndRejectionAgreeOnValidity) {
  auto g = parse("root ::= [a-c]+ \".\"");
  auto vocab = byte_vocab();
  for (bool grammar_first : {false, true}) {
    SamplerParams p;
    p.seed = 5;
    auto chain = SamplerChain::create(p, setup_for(vocab, g));
    std::vector<float> logits(static_cast<size_t>(vocab->n_vocab()), 0.0f);
    logits['z'] = 20.0f;  // the model wants something the grammar forbids
    logits['b'] = 8.0f;
    auto r = chain->sample(logits, opts(false, 0, -1, grammar_first));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->token, 'b');
    EXPECT_EQ(r->grammar_resampled, !grammar_first);
  }
}

TEST(GrammarMatcher, NonProductiveGrammarDoesNotHang) {
  // Fuzzer regression: a rule that can never finish has no shortest completion.
  auto g = parse("root ::= \"[\" root");
  GrammarMatcher m(g, byte_vocab());
  EXPECT_EQ(m.shortest_completion(), "");
  EXPECT_EQ(m.min_remaining_bytes(), Grammar::kUnreachable);
  EXPECT_TRUE(m.allows('[', -1));
  EXPECT_FALSE(m.allows('[', 50));  // can never complete within any budget
  // A class that matches nothing.
  auto none = parse("root ::= \"a\" | [^\\x00-\\U0010FFFF]");
  EXPECT_EQ(none->rule_min_bytes(none->root()), 1u);
}

TEST(GrammarMatcher, ImpossibleGrammarIsAnError) {
  // The grammar wants a character no token can produce.
  auto g = parse("root ::= \"\\x00\"");
  auto vocab = byte_vocab();
  GrammarMatcher m(g, vocab);
  Candidates c;
  for (int32_t i = 0; i < vocab->n_vocab(); ++i) c.data.push_back({i, 0.0f, 0.0f});
  const Status s = m.filter(c, -1);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("admits none"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace loupe::sample
