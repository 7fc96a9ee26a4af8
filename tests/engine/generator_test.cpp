// The generation loop through engine::Generator on stories260K (a real trained model): every
// sampler setting, seeded determinism for any thread count, stop strings, logprobs, grammars and
// their token budget, prefix reuse, cancellation and the context limit; chat rendering on a
// tiny synthesized model carrying Phi-3's vocabulary and template.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "common/testdata.h"
#include "engine/generator.h"
#include "engine/model.h"
#include "engine/prompt.h"
#include "model/synth.h"
#include "sample/json_schema.h"

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

std::unique_ptr<Generator> generator(const Model& m, int threads = 2, int64_t n_ctx = 0) {
  runtime::RunParams p;
  p.n_threads = threads;
  p.n_ctx = n_ctx;
  auto g = Generator::create(m, p);
  EXPECT_TRUE(g.has_value()) << g.status().message();
  return std::move(*g);
}

GenerateRequest story_request(int32_t n_predict = 24) {
  GenerateRequest req;
  req.prompt = stories().tokenize_prompt("Once upon a time", false);
  req.n_predict = n_predict;
  req.sampler.temp = 0.0f;
  req.sampler.seed = 7;
  return req;
}

TEST(Generator, GreedyContinuesTheStory) {
  LOUPE_REQUIRE_TESTDATA();
  auto g = generator(stories());
  std::string streamed;
  auto r = g->generate(story_request(), [&](const TokenEvent& ev) {
    streamed += ev.text;
    return true;
  });
  ASSERT_TRUE(r.has_value()) << r.status().message();
  EXPECT_EQ(r->text.rfind(", there was a little girl named Lily.", 0), 0u) << r->text;
  EXPECT_EQ(streamed, r->text);
  EXPECT_EQ(r->tokens.size(), 24u);
  EXPECT_EQ(r->stop_reason, StopReason::kLength);
  EXPECT_EQ(r->seed, 7u);
  EXPECT_EQ(r->timings.predicted_n, 24);
  EXPECT_EQ(r->timings.prompt_n, r->n_prompt);
}

// Each stage on its own and in llama.cpp's default chain: generation succeeds, stays inside
// the vocabulary and repeats exactly for the same seed.
TEST(Generator, EverySamplerSettingIsSeededAndRepeatable) {
  LOUPE_REQUIRE_TESTDATA();
  std::vector<std::pair<std::string, sample::SamplerParams>> settings;
  auto add = [&](std::string name, auto change) {
    sample::SamplerParams p;
    p.seed = 1234;
    change(p);
    settings.emplace_back(std::move(name), p);
  };
  add("defaults", [](auto&) {});
  add("temp 1.5", [](auto& p) { p.temp = 1.5f; });
  add("top_k 5", [](auto& p) { p.top_k = 5; });
  add("top_p 0.5", [](auto& p) { p.top_p = 0.5f; });
  add("min_p 0.2", [](auto& p) { p.min_p = 0.2f; });
  add("typical 0.7", [](auto& p) { p.typ_p = 0.7f; });
  add("top_n_sigma 1", [](auto& p) { p.top_n_sigma = 1.0f; });
  add("xtc", [](auto& p) {
    p.xtc_probability = 0.5f;
    p.xtc_threshold = 0.1f;
  });
  add("dynatemp", [](auto& p) { p.dynatemp_range = 0.5f; });
  add("repeat penalty", [](auto& p) {
    p.penalty_repeat = 1.3f;
    p.penalty_last_n = 32;
  });
  add("presence/frequency", [](auto& p) {
    p.penalty_present = 0.5f;
    p.penalty_freq = 0.5f;
  });
  add("dry", [](auto& p) { p.dry_multiplier = 0.8f; });
  add("mirostat 1", [](auto& p) { p.mirostat = 1; });
  add("mirostat 2", [](auto& p) { p.mirostat = 2; });
  add("logit bias", [](auto& p) { p.logit_bias = {{432, -INFINITY}}; });
  add("order", [](auto& p) {
    p.samplers = {sample::SamplerStage::kTemperature, sample::SamplerStage::kTopK};
  });
  auto g = generator(stories());
  for (const auto& [name, params] : settings) {
    GenerateRequest req = story_request(16);
    req.sampler = params;
    req.sampler.ignore_eos = true;
    auto a = g->generate(req);
    ASSERT_TRUE(a.has_value()) << name << ": " << a.status().message();
    auto b = g->generate(req);
    ASSERT_TRUE(b.has_value()) << name;
    EXPECT_EQ(a->tokens, b->tokens) << name;
    EXPECT_EQ(a->tokens.size(), 16u) << name;
    for (int32_t t : a->tokens) EXPECT_TRUE(stories().tokenizer().valid(t)) << name;
    if (name == "logit bias") {
      for (int32_t t : a->tokens) EXPECT_NE(t, 432) << "a banned token was sampled";
    }
  }
}

TEST(Generator, SameSeedSameTokensAndLogprobsForAnyThreadCount) {
  LOUPE_REQUIRE_TESTDATA();
  GenerateRequest req = story_request(40);
  req.sampler.temp = 1.0f;
  req.sampler.seed = 99;
  req.n_logprobs = 5;
  std::optional<GenerateResult> first;
  for (int threads : {1, 2, 4}) {
    auto g = generator(stories(), threads);
    auto r = g->generate(req);
    ASSERT_TRUE(r.has_value()) << r.status().message();
    if (!first) {
      first = std::move(*r);
      continue;
    }
    EXPECT_EQ(r->tokens, first->tokens) << threads << " threads";
    ASSERT_EQ(r->logprobs.size(), first->logprobs.size());
    for (size_t i = 0; i < r->logprobs.size(); ++i) {
      const auto& a = r->logprobs[i];
      const auto& b = first->logprobs[i];
      EXPECT_EQ(std::memcmp(&a.logprob, &b.logprob, sizeof(double)), 0) << "token " << i;
      EXPECT_EQ(a.entropy, b.entropy);
      EXPECT_EQ(a.post_prob, b.post_prob);
      ASSERT_EQ(a.top.size(), b.top.size());
      for (size_t k = 0; k < a.top.size(); ++k) {
        EXPECT_EQ(a.top[k].token, b.top[k].token);
        EXPECT_EQ(a.top[k].logprob, b.top[k].logprob);
      }
    }
  }
}

TEST(Generator, LogprobsHaveExactlyKSortedRawAlternativesAndPostValues) {
  LOUPE_REQUIRE_TESTDATA();
  auto g = generator(stories());
  for (int k : {0, 1, 5, 20}) {
    GenerateRequest req = story_request(12);
    req.sampler.temp = 0.9f;
    req.sampler.top_k = 3;
    req.n_logprobs = k;
    int events = 0;
    auto r = g->generate(req, [&](const TokenEvent& ev) {
      if (ev.token >= 0) {
        EXPECT_NE(ev.logprobs, nullptr);
        ++events;
      }
      return true;
    });
    ASSERT_TRUE(r.has_value()) << r.status().message();
    ASSERT_EQ(r->logprobs.size(), r->tokens.size());
    EXPECT_EQ(events, static_cast<int>(r->tokens.size()));
    for (size_t i = 0; i < r->logprobs.size(); ++i) {
      const sample::TokenLogprobs& lp = r->logprobs[i];
      EXPECT_EQ(lp.token, r->tokens[i]);
      ASSERT_EQ(lp.top.size(), static_cast<size_t>(k));
      double sum = 0;
      for (size_t j = 0; j < lp.top.size(); ++j) {
        sum += std::exp(lp.top[j].logprob);
        if (j > 0) {
          EXPECT_GE(lp.top[j - 1].logprob, lp.top[j].logprob);
        }
      }
      EXPECT_LE(sum, 1.0 + 1e-9);
      EXPECT_LE(lp.logprob, 0.0);
      EXPECT_GT(lp.entropy, 0.0);
      // After top_k 3 the token's probability can only rise, and it was one of the 3.
      EXPECT_GE(lp.post_prob + 1e-6, std::exp(lp.logprob));
      EXPECT_LE(lp.post_top.size(), std::min<size_t>(3, static_cast<size_t>(k)));
      if (k >= 3) {
        bool in_top3 = false;
        for (size_t j = 0; j < 3; ++j) in_top3 |= lp.top[j].token == lp.token;
        EXPECT_TRUE(in_top3);
      }
    }
  }
  // Greedy: the token is the raw top-1, and the post-transform distribution is just it.
  GenerateRequest greedy = story_request(8);
  greedy.n_logprobs = 3;
  auto r = g->generate(greedy);
  ASSERT_TRUE(r.has_value());
  for (const auto& lp : r->logprobs) {
    EXPECT_EQ(lp.top[0].token, lp.token);
    EXPECT_EQ(lp.top[0].logprob, lp.logprob);
    EXPECT_FLOAT_EQ(static_cast<float>(lp.post_prob), 1.0f);
  }
}

TEST(Generator, StopStringsEndTheTextAndAreHeldBackWhileUndecided) {
  LOUPE_REQUIRE_TESTDATA();
  auto g = generator(stories());
  GenerateRequest req = story_request(64);
  req.stop = {"nothing like this", "Lily"};
  std::string streamed;
  auto r = g->generate(req, [&](const TokenEvent& ev) {
    streamed += ev.text;
    return true;
  });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->stop_reason, StopReason::kStopString);
  EXPECT_EQ(r->stop_string, "Lily");
  EXPECT_EQ(r->text, ", there was a little girl named ");
  EXPECT_EQ(streamed, r->text);  // "Li" was never streamed
  // Only the tail that could still become a stop string is held.
  StopScan s = scan_stop_strings("hello Li", {"Lily", "xyz"});
  EXPECT_EQ(s.match, std::string::npos);
  EXPECT_EQ(s.release, 6u);
  s = scan_stop_strings("ab</s", {"</stop>", "</s>"});
  EXPECT_EQ(s.release, 2u);
  s = scan_stop_strings("a STOP b", {"STOP"});
  EXPECT_EQ(s.match, 2u);
  EXPECT_EQ(s.release, 2u);
  s = scan_stop_strings("abc", {});
  EXPECT_EQ(s.release, 3u);
}

TEST(Generator, GrammarConstrainedOutputIsValidJson) {
  LOUPE_REQUIRE_TESTDATA();
  auto grammar = sample::json_schema_to_grammar(std::string_view(
      R"({"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer"}},"required":["name","age"]})"));
  ASSERT_TRUE(grammar.has_value()) << grammar.status().message();
  auto g = generator(stories());
  for (uint32_t seed : {1u, 2u, 3u}) {
    GenerateRequest req = story_request(80);
    req.sampler = {};
    req.sampler.seed = seed;
    req.grammar = *grammar;
    auto r = g->generate(req);
    ASSERT_TRUE(r.has_value()) << r.status().message();
    auto j = nlohmann::json::parse(r->text, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r->text;
    EXPECT_TRUE(j["name"].is_string()) << r->text;
    EXPECT_TRUE(j["age"].is_number_integer()) << r->text;
  }
}

TEST(Generator, GrammarBudgetSteersToACompletionOrFailsClearly) {
  LOUPE_REQUIRE_TESTDATA();
  auto g = generator(stories());
  // A free-text list that the budget must close in time.
  GenerateRequest req = story_request(12);
  req.sampler = {};
  req.sampler.seed = 5;
  req.sampler.temp = 1.5f;
  req.grammar = R"(root ::= "[" item ("," item)* "]"
item ::= [a-z ]+)";
  auto r = g->generate(req);
  ASSERT_TRUE(r.has_value()) << r.status().message();
  EXPECT_LE(r->tokens.size(), 12u);
  EXPECT_EQ(r->text.front(), '[') << r->text;
  EXPECT_EQ(r->text.back(), ']') << r->text;
  // Thirty-odd fixed characters cannot fit in three tokens.
  req.n_predict = 3;
  req.grammar = R"(root ::= "the quick brown fox jumps over the lazy dog")";
  auto bad = g->generate(req);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.status().code(), ErrorCode::kOutOfRange) << bad.status().message();
  // A grammar that does not parse names the place.
  req.grammar = "root ::= (";
  auto unparsable = g->generate(req);
  ASSERT_FALSE(unparsable.has_value());
  EXPECT_NE(unparsable.status().message().find("grammar"), std::string::npos);
}

TEST(Generator, ReusesTheCacheForAnExtendedPromptWithIdenticalResults) {
  LOUPE_REQUIRE_TESTDATA();
  auto g = generator(stories());
  GenerateRequest first = story_request(10);
  auto a = g->generate(first);
  ASSERT_TRUE(a.has_value());
  // The next "turn": everything evaluated so far plus more text.
  GenerateRequest next = story_request(10);
  next.prompt = g->cached_tokens();
  for (int32_t t : stories().tokenizer().tokenize(" The end. Once", false, false))
    next.prompt.push_back(t);
  const size_t cached = g->cached_tokens().size();
  auto b = g->generate(next);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->timings.cache_n, static_cast<int64_t>(cached));
  EXPECT_EQ(b->timings.prompt_n, static_cast<int64_t>(next.prompt.size() - cached));
  auto fresh = generator(stories())->generate(next);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(fresh->timings.cache_n, 0);
  EXPECT_EQ(b->tokens, fresh->tokens);
  // A prompt that diverges is evaluated from the start.
  auto c = g->generate(first);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->timings.cache_n, 0);
  EXPECT_EQ(c->tokens, a->tokens);
}

TEST(Generator, CancelAndContextLimitStopWithTheirReasons) {
  LOUPE_REQUIRE_TESTDATA();
  auto g = generator(stories(), 2, 48);
  GenerateRequest req = story_request(-1);
  req.sampler.ignore_eos = true;
  int n = 0;
  auto r = g->generate(req, [&](const TokenEvent& ev) { return ev.token < 0 || ++n < 3; });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->stop_reason, StopReason::kCancelled);
  EXPECT_EQ(r->tokens.size(), 3u);
  std::atomic<bool> cancel{true};
  req.cancel = &cancel;
  r = g->generate(req);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->stop_reason, StopReason::kCancelled);
  EXPECT_TRUE(r->tokens.empty());
  req.cancel = nullptr;
  r = g->generate(req);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->stop_reason, StopReason::kContext);
  EXPECT_EQ(r->n_prompt + static_cast<int64_t>(r->tokens.size()), 49);  // the last is unevaluated
  // A prompt longer than the context is an error that says what to do.
  req.prompt.assign(60, 400);
  auto too_long = g->generate(req);
  ASSERT_FALSE(too_long.has_value());
  EXPECT_NE(too_long.status().message().find("-c"), std::string::npos);
  req.prompt = {1, 99999};
  EXPECT_FALSE(g->generate(req).has_value());
}

TEST(Generator, StopsAtEndOfGenerationUnlessIgnored) {
  LOUPE_REQUIRE_TESTDATA();
  auto g = generator(stories());
  const int32_t eos = stories().tokenizer().eos();
  GenerateRequest req = story_request(8);
  req.sampler.logit_bias = {{eos, 100.0f}};  // makes </s> the only sensible next token
  auto r = g->generate(req);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->stop_reason, StopReason::kEog);
  EXPECT_TRUE(r->tokens.empty());
  req.sampler.ignore_eos = true;
  auto ignored = g->generate(req);
  ASSERT_TRUE(ignored.has_value());
  EXPECT_EQ(ignored->stop_reason, StopReason::kLength);
  EXPECT_EQ(ignored->tokens.size(), 8u);
  for (int32_t t : ignored->tokens) EXPECT_FALSE(stories().tokenizer().is_eog(t));
}

// ---- a chat template: a tiny random model with Phi-3's vocabulary and template

std::string tiny_phi3_model() {
  static const std::string path = [] {
    const std::string out = testing::temp_dir() + "/tiny-phi3.gguf";
    auto vf = gguf::File::open(testing::testdata_path("vocab/ggml-vocab-phi-3.gguf"));
    EXPECT_TRUE(vf.has_value());
    auto vocab = model::vocab_from_gguf(*vf);
    EXPECT_TRUE(vocab.has_value());
    auto shape = model::shape_from_json(
        R"({"arch":"llama","name":"tiny-phi3","n_vocab":)" + std::to_string(vocab->n_vocab) +
            R"(,"n_ctx":256,"n_embd":32,"n_layer":1,"n_ff":64,"n_head":2})",
        "test");
    EXPECT_TRUE(shape.has_value()) << shape.status().message();
    auto spec = model::build_spec(*shape);
    EXPECT_TRUE(spec.has_value()) << spec.status().message();
    ThreadPool pool(2);
    Status st = model::synthesize(*spec, model::FileType::kF32, 1, &*vocab, out, pool);
    EXPECT_TRUE(st.ok()) << st.message();
    return out;
  }();
  return path;
}

TEST(Chat, RendersTheModelsTemplateAndTokenizesSpecialTokens) {
  LOUPE_REQUIRE_TESTDATA();
  auto m = Model::load(tiny_phi3_model());
  ASSERT_TRUE(m.has_value()) << m.status().message();
  ASSERT_TRUE((*m)->has_chat_template());
  auto format = chat_format(**m, false);
  ASSERT_TRUE(format.has_value());
  EXPECT_FALSE(format->fallback);
  const std::vector<Message> msgs = {{"system", "Be brief."}, {"user", "Hi there"}};
  auto text = render_chat(**m, *format, msgs, true);
  ASSERT_TRUE(text.has_value()) << text.status().message();
  EXPECT_NE(text->find("<|user|>"), std::string::npos) << *text;
  EXPECT_NE(text->find("Hi there<|end|>"), std::string::npos) << *text;
  EXPECT_TRUE(text->ends_with("<|assistant|>\n")) << *text;
  const auto ids = (*m)->tokenize_prompt(*text, true);
  const auto& tok = (*m)->tokenizer();
  int specials = 0;
  for (int32_t id : ids)
    specials += tok.token_text(id) == "<|user|>" || tok.token_text(id) == "<|end|>";
  EXPECT_GE(specials, 2);
  EXPECT_EQ((*m)->sha256()->size(), 64u);
  // The fallback is only given when asked for.
  EXPECT_FALSE(chat_format(stories(), false).has_value());
  auto chatml = chat_format(stories(), true);
  ASSERT_TRUE(chatml.has_value());
  EXPECT_TRUE(chatml->fallback);
  auto rendered = render_chat(stories(), *chatml, msgs, true);
  ASSERT_TRUE(rendered.has_value());
  EXPECT_EQ(*rendered,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n"
            "<|im_start|>assistant\n");
}

}  // namespace
}  // namespace loupe::engine
