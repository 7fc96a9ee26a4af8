// Each sampler stage against hand-computed distributions. Many vectors are the ones llama.cpp's
// tests/test-sampling.cpp checks (same inputs, same expected probabilities); the others are
// worked out in the comments.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <thread>

#include "base/thread_pool.h"
#include "sample_options.h"
#include "sample/logprobs.h"
#include "sample/sampler.h"

namespace loupe::sample {
namespace {

ChainSetup with_vocab(int32_t n_vocab) {
  ChainSetup s;
  s.n_vocab = n_vocab;
  return s;
}

using testing::opts;

std::vector<float> logits_of(const std::vector<float>& probs) {
  std::vector<float> out;
  for (float p : probs) out.push_back(std::log(p));
  return out;
}

struct Run {
  std::vector<Candidate> final_dist;  // after the last stage, by p descending
  SampleResult result;
};

// Runs the given stages only (the chain's final draw included) and returns the distribution
// the token was drawn from.
Run run_stages(SamplerParams params, const std::vector<float>& probs,
               const std::vector<int32_t>& history = {}, ChainSetup setup = {}) {
  setup.n_vocab = static_cast<int32_t>(probs.size());
  if (params.seed == kRandomSeed) params.seed = 0;
  auto chain = SamplerChain::create(params, setup);
  EXPECT_TRUE(chain.has_value()) << chain.status().message();
  for (int32_t t : history) EXPECT_TRUE(chain->accept(t, false).ok());
  const auto logits = logits_of(probs);
  auto r = chain->sample(logits, opts(true));
  EXPECT_TRUE(r.has_value()) << r.status().message();
  return {r->final_candidates, *r};
}

SamplerParams only(std::vector<SamplerStage> stages) {
  SamplerParams p;
  p.samplers = std::move(stages);
  return p;
}

// Expected: probabilities in descending order (ties listed in id order).
void expect_dist(const std::vector<Candidate>& got, const std::vector<float>& expected,
                 float tol = 1e-5f) {
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(got[i].p, expected[i], tol) << "rank " << i << " (token " << got[i].id << ")";
  }
}

std::map<int32_t, float> by_id(const std::vector<Candidate>& c) {
  std::map<int32_t, float> m;
  for (const auto& x : c) m[x.id] = x.p;
  return m;
}

const std::vector<float> kP4 = {0.1f, 0.2f, 0.3f, 0.4f};

TEST(Sampler, Temperature) {
  auto p = only({SamplerStage::kTemperature});
  p.temp = 1.0f;
  expect_dist(run_stages(p, kP4).final_dist, {0.4f, 0.3f, 0.2f, 0.1f});
  p.temp = 0.0f;  // greedy: the rest become -inf
  auto r = run_stages(p, kP4);
  expect_dist(r.final_dist, {1.0f});
  EXPECT_EQ(r.result.token, 3);
  // T = 2 on logits {0, ln 4}: p ∝ {1, 4^(1/2)} = {1/3, 2/3}.
  p.temp = 2.0f;
  expect_dist(run_stages(p, {0.2f, 0.8f}).final_dist, {2.0f / 3, 1.0f / 3});
}

TEST(Sampler, DynamicTemperature) {
  auto p = only({SamplerStage::kTemperature});
  p.temp = 1.0f;
  p.dynatemp_range = 0.0f;
  expect_dist(run_stages(p, kP4).final_dist, {0.4f, 0.3f, 0.2f, 0.1f});
  // {0.8, 0.2}: H = 0.50040 nats, H/ln 2 = 0.72193, T = 0.5 + (1.5 - 0.5) * 0.72193 = 1.22193,
  // logit gap ln 4 / 1.22193 = 1.13451, p = 1 / (1 + e^-1.13451) = 0.756671.
  p.dynatemp_range = 0.5f;
  expect_dist(run_stages(p, {0.8f, 0.2f}).final_dist, {0.756671f, 0.243329f});
}

TEST(Sampler, TopK) {
  auto p = only({SamplerStage::kTopK});
  p.top_k = 1;
  expect_dist(run_stages(p, kP4).final_dist, {1.0f});
  p.top_k = 3;
  expect_dist(run_stages(p, kP4).final_dist, {0.44444f, 0.33333f, 0.22222f});
  p.top_k = 4;
  expect_dist(run_stages(p, kP4).final_dist, {0.4f, 0.3f, 0.2f, 0.1f});
  p.top_k = 0;  // off
  expect_dist(run_stages(p, kP4).final_dist, {0.4f, 0.3f, 0.2f, 0.1f});
}

TEST(Sampler, TopP) {
  auto p = only({SamplerStage::kTopP});
  p.top_p = 0.0f;
  expect_dist(run_stages(p, kP4).final_dist, {1.0f});
  p.top_p = 0.7f;
  expect_dist(run_stages(p, kP4).final_dist, {0.571429f, 0.428571f});
  p.top_p = 0.8f;
  expect_dist(run_stages(p, kP4).final_dist, {0.44444f, 0.33333f, 0.22222f});
  p.top_p = 1.0f;
  expect_dist(run_stages(p, kP4).final_dist, {0.4f, 0.3f, 0.2f, 0.1f});
  // min_keep wins over the mass criterion.
  p.top_p = 0.0f;
  p.min_keep = 2;
  expect_dist(run_stages(p, kP4).final_dist, {0.571429f, 0.428571f});
}

TEST(Sampler, TopPLargeVocabulary) {
  // 2000 tokens: the partial-sort fast path must agree with a full sort.
  std::vector<float> probs(2000);
  double sum = 0;
  for (size_t i = 0; i < probs.size(); ++i) sum += (probs[i] = 1.0f / static_cast<float>(i + 1));
  for (auto& x : probs) x = static_cast<float>(x / sum);
  auto p = only({SamplerStage::kTopP});
  for (float top_p : {0.3f, 0.9f, 0.999f}) {
    p.top_p = top_p;
    const auto got = run_stages(p, probs).final_dist;
    // Expected size: smallest n with sum_{i<n} p_i >= top_p.
    float cum = 0;
    size_t n = 0;
    while (cum < top_p) cum += probs[n++];
    EXPECT_EQ(got.size(), n) << top_p;
    EXPECT_EQ(got.front().id, 0);
  }
}

TEST(Sampler, MinP) {
  auto p = only({SamplerStage::kMinP});
  const std::vector<std::pair<float, std::vector<float>>> cases = {
      {0.00f, {0.4f, 0.3f, 0.2f, 0.1f}},
      {0.24f, {0.4f, 0.3f, 0.2f, 0.1f}},
      {0.26f, {0.4f / 0.9f, 0.3f / 0.9f, 0.2f / 0.9f}},
      {0.49f, {0.4f / 0.9f, 0.3f / 0.9f, 0.2f / 0.9f}},
      {0.51f, {0.4f / 0.7f, 0.3f / 0.7f}},
      {0.74f, {0.4f / 0.7f, 0.3f / 0.7f}},
      {0.76f, {1.0f}},
      {1.00f, {1.0f}},
      {1.05f, {1.0f}},
  };
  for (const auto& [min_p, expected] : cases) {
    SCOPED_TRACE(min_p);
    p.min_p = min_p;
    expect_dist(run_stages(p, kP4).final_dist, expected);
  }
}

TEST(Sampler, TypicalP) {
  auto p = only({SamplerStage::kTypicalP});
  p.typ_p = 0.5f;
  expect_dist(run_stages(p, {0.97f, 0.01f, 0.01f, 0.01f}).final_dist, {1.0f});
  // H of {0.4, 0.2, 0.2, 0.2} = 1.3322; |-ln 0.2 - H| = 0.277 < |-ln 0.4 - H| = 0.416, so the
  // three 0.2 tokens come first and reach 0.6 > 0.5.
  expect_dist(run_stages(p, {0.4f, 0.2f, 0.2f, 0.2f}).final_dist, {1 / 3.0f, 1 / 3.0f, 1 / 3.0f});
  const auto kept = by_id(run_stages(p, {0.4f, 0.2f, 0.2f, 0.2f}).final_dist);
  EXPECT_EQ(kept.count(0), 0u);
}

TEST(Sampler, Xtc) {
  auto p = only({SamplerStage::kXtc});
  p.xtc_probability = 1.0f;  // always triggers
  const std::vector<float> probs = {0.4f, 0.3f, 0.2f, 0.1f};
  // Everything at or above the threshold but the least likely of those goes.
  const std::vector<std::pair<float, std::vector<int32_t>>> cases = {
      {0.09f, {3}}, {0.19f, {2, 3}}, {0.29f, {1, 2, 3}}, {0.39f, {0, 1, 2, 3}}};
  for (const auto& [threshold, ids] : cases) {
    SCOPED_TRACE(threshold);
    p.xtc_threshold = threshold;
    const auto kept = by_id(run_stages(p, probs).final_dist);
    ASSERT_EQ(kept.size(), ids.size());
    for (int32_t id : ids) EXPECT_EQ(kept.count(id), 1u) << id;
  }
  p.xtc_threshold = 0.6f;  // > 0.5 disables
  EXPECT_EQ(run_stages(p, probs).final_dist.size(), 4u);
  p.xtc_threshold = 0.09f;
  p.xtc_probability = 0.0f;
  EXPECT_EQ(run_stages(p, probs).final_dist.size(), 4u);
}

TEST(Sampler, TopNSigma) {
  auto p = only({SamplerStage::kTopNSigma});
  // logits ln{.1,.2,.3,.4}: mean -1.5843, sd 0.5232; max - 1 sd = -1.4395 keeps ln .3, ln .4.
  p.top_n_sigma = 1.0f;
  expect_dist(run_stages(p, kP4).final_dist, {0.571429f, 0.428571f});
  p.top_n_sigma = 0.0f;  // off (llama.cpp PR 13345)
  expect_dist(run_stages(p, kP4).final_dist, {0.4f, 0.3f, 0.2f, 0.1f});
  p.top_n_sigma = 3.0f;
  expect_dist(run_stages(p, kP4).final_dist, {0.4f, 0.3f, 0.2f, 0.1f});
}

TEST(Sampler, RepetitionPenalty) {
  auto p = only({SamplerStage::kPenalties});
  const std::vector<float> flat(5, 0.2f);
  p.penalty_repeat = 50.0f;
  p.penalty_last_n = 1;
  auto first = by_id(run_stages(p, flat, {0}).final_dist);
  EXPECT_NEAR(first[1], 0.25f, 1e-5f);
  EXPECT_NEAR(first[0], 0.0f, 1e-5f);
  p.penalty_last_n = 3;
  auto got = by_id(run_stages(p, flat, {0, 1, 2}).final_dist);
  EXPECT_NEAR(got[3], 0.5f, 1e-5f);
  EXPECT_NEAR(got[4], 0.5f, 1e-5f);
  EXPECT_NEAR(got[0], 0.0f, 1e-5f);
  p.penalty_last_n = 5;
  got = by_id(run_stages(p, flat, {0, 1, 2, 0, 0}).final_dist);
  EXPECT_NEAR(got[3], 0.5f, 1e-5f);
  // A positive logit is divided: logits {1, 0}, penalty 2 on token 0 -> {0.5, 0} -> p0 = 0.622459.
  p.penalty_repeat = 2.0f;
  p.penalty_last_n = 1;
  std::vector<float> probs = {std::exp(1.0f) / (1 + std::exp(1.0f)), 1 / (1 + std::exp(1.0f))};
  // logits_of gives ln p, i.e. {1, 0} shifted by -ln Z: both negative. Use raw logits instead.
  SamplerParams q = p;
  q.seed = 0;
  auto chain = SamplerChain::create(q, with_vocab(2));
  ASSERT_TRUE(chain.has_value());
  ASSERT_TRUE(chain->accept(0, false).ok());
  const std::vector<float> raw = {1.0f, 0.0f};
  auto r = chain->sample(raw);
  ASSERT_TRUE(r.has_value());
  EXPECT_NEAR(by_id(r->final_candidates)[0], 0.622459f, 1e-5f);
}

TEST(Sampler, FrequencyAndPresencePenalties) {
  auto p = only({SamplerStage::kPenalties});
  const std::vector<float> flat(5, 0.2f);
  p.penalty_freq = 5.0f;
  p.penalty_present = 5.0f;
  p.penalty_last_n = 1;
  auto got = by_id(run_stages(p, flat, {0}).final_dist);
  EXPECT_NEAR(got[0], 0.000011f, 1e-6f);
  EXPECT_NEAR(got[1], 0.249997f, 1e-6f);
  p.penalty_last_n = 3;
  got = by_id(run_stages(p, flat, {0, 1, 2}).final_dist);
  EXPECT_NEAR(got[0], 0.000023f, 1e-6f);
  EXPECT_NEAR(got[3], 0.499966f, 1e-6f);
  p.penalty_last_n = 5;
  got = by_id(run_stages(p, flat, {0, 1, 2, 0, 0}).final_dist);
  EXPECT_NEAR(got[0], 0.0f, 1e-6f);  // three times: -5*3 - 5
  EXPECT_NEAR(got[1], 0.000023f, 1e-6f);
  EXPECT_NEAR(got[3], 0.499977f, 1e-6f);
  // The window slides: with last_n = 2 only the last two tokens {2, 0} count.
  p.penalty_last_n = 2;
  got = by_id(run_stages(p, flat, {1, 1, 2, 0}).final_dist);
  EXPECT_NEAR(got[1], got[3], 1e-7f);
  EXPECT_LT(got[2], 1e-3f);
}

ChainSetup dry_setup(std::vector<std::string> pieces) {
  ChainSetup s;
  s.n_ctx = 1024;
  s.vocab = TokenVocab::create(std::move(pieces), {});
  return s;
}

TEST(Sampler, Dry) {
  auto p = only({SamplerStage::kDry});
  p.dry_sequence_breakers = {};
  p.dry_multiplier = 1.0f;
  p.dry_base = 1.1f;
  p.dry_allowed_length = 2;
  const std::vector<float> p4(4, 0.25f), p5(5, 0.2f);
  p.dry_penalty_last_n = 4;
  expect_dist(run_stages(p, p4, {0, 1}).final_dist, {0.25f, 0.25f, 0.25f, 0.25f});
  // "0 1 2 0 1": emitting 2 would repeat "0 1 2" (length 2 + 1): penalty 1.1^0 = 1.
  p.dry_penalty_last_n = 5;
  auto got = by_id(run_stages(p, p4, {0, 1, 2, 0, 1}).final_dist);
  EXPECT_NEAR(got[2], 0.109232f, 1e-5f);
  EXPECT_NEAR(got[0], 0.296923f, 1e-5f);
  p.dry_multiplier = 2.0f;
  got = by_id(run_stages(p, p5, {0, 1, 2, 0, 1}).final_dist);
  EXPECT_NEAR(got[2], 0.032727f, 1e-5f);
  EXPECT_NEAR(got[0], 0.241818f, 1e-5f);
  // A sequence breaker ("X" is token 3) stops the repeat from reaching back.
  p.dry_multiplier = 1.0f;
  p.dry_penalty_last_n = 6;
  p.dry_sequence_breakers = {"X"};
  got =
      by_id(run_stages(p, p5, {0, 1, 3, 4, 0, 1}, dry_setup({"a", "b", "c", "X", "e"})).final_dist);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(got[i], 0.2f, 1e-6f);
  // Repeats shorter than the allowed length are free.
  p.dry_sequence_breakers = {};
  p.dry_allowed_length = 4;
  p.dry_penalty_last_n = 7;
  got = by_id(run_stages(p, p5, {0, 1, 2, 3, 4, 0, 1}).final_dist);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(got[i], 0.2f, 1e-6f);
}

TEST(Sampler, DryMultiTokenBreaker) {
  // Breaker "ab" spans tokens "a" + "b": tokens "xa" (ends with "a") start it, tail = "b".
  auto p = only({SamplerStage::kDry});
  p.dry_multiplier = 1.0f;
  p.dry_base = 1.1f;
  p.dry_allowed_length = 2;
  p.dry_penalty_last_n = 16;
  p.dry_sequence_breakers = {"ab"};
  auto setup = dry_setup({"xa", "b", "c", "d", "e"});
  setup.tokenize = [](const std::string& s) {
    return s == "b" ? std::vector<int32_t>{1} : std::vector<int32_t>{};
  };
  const std::vector<float> p5(5, 0.2f);
  // "xa b c xa b c": the context's suffix repeats in full (length 3), so xa would extend it;
  // but "xa b" spells the breaker, which caps the repeat at 1 token (< allowed 2).
  auto got = by_id(run_stages(p, p5, {0, 1, 2, 0, 1, 2}, setup).final_dist);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(got[i], 0.2f, 1e-6f);
  // Without the breaker, xa (token 0) is penalised by 1.1^(3-2).
  p.dry_sequence_breakers = {};
  got = by_id(run_stages(p, p5, {0, 1, 2, 0, 1, 2}, setup).final_dist);
  const float other = 1.0f / (4.0f + std::exp(-1.1f));
  EXPECT_NEAR(got[0], other * std::exp(-1.1f), 1e-6f);
  EXPECT_NEAR(got[1], other, 1e-6f);
}

TEST(Sampler, LogitBiasAndIgnoreEos) {
  SamplerParams p = only({});
  p.logit_bias = {{0, -INFINITY}, {1, std::log(3.0f)}};
  // {.25,.25,.25,.25}: token 0 banned, token 1 x3 -> {3, 1, 1} / 5.
  auto got = by_id(run_stages(p, {0.25f, 0.25f, 0.25f, 0.25f}).final_dist);
  EXPECT_EQ(got.count(0), 0u);
  EXPECT_NEAR(got[1], 0.6f, 1e-6f);
  EXPECT_NEAR(got[2], 0.2f, 1e-6f);
  SamplerParams q = only({});
  q.ignore_eos = true;
  ChainSetup s;
  s.vocab = TokenVocab::create({"a", "b", "</s>"}, std::vector<int32_t>{2});
  got = by_id(run_stages(q, {0.2f, 0.2f, 0.6f}, {}, s).final_dist);
  EXPECT_EQ(got.count(2), 0u);
  EXPECT_NEAR(got[0], 0.5f, 1e-6f);
  // A bias outside the vocabulary is an error naming the flag.
  p.logit_bias = {{7, 1.0f}};
  auto bad = SamplerChain::create(p, with_vocab(4));
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.status().message().find("--logit-bias"), std::string::npos);
}

TEST(Sampler, MirostatV2) {
  SamplerParams p;
  p.mirostat = 2;
  p.mirostat_tau = 1.0f;  // mu starts at 2 bits
  p.temp = 1.0f;
  // Surprises of {.5, .25, .125, .125} are {1, 2, 3, 3} bits: only the first two stay.
  expect_dist(run_stages(p, {0.5f, 0.25f, 0.125f, 0.125f}).final_dist, {2 / 3.0f, 1 / 3.0f});
  EXPECT_EQ(run_stages(p, {0.5f, 0.25f, 0.125f, 0.125f}).result.stages.back().name, "mirostat_v2");
}

TEST(Sampler, MirostatV1) {
  // Zipf with exponent 1.5 over 100 tokens: the estimate s_hat is exactly 1.5, and with
  // mu = 2 tau = 10: k = (0.5 * 2^10 / (1 - 100^-0.5))^(1/1.5) = 68.657 -> top 68.
  std::vector<float> probs(100);
  double sum = 0;
  for (size_t i = 0; i < probs.size(); ++i)
    sum += (probs[i] = std::pow(static_cast<float>(i + 1), -1.5f));
  for (auto& x : probs) x = static_cast<float>(x / sum);
  SamplerParams p;
  p.mirostat = 1;
  p.mirostat_tau = 5.0f;
  p.temp = 1.0f;
  const auto r = run_stages(p, probs);
  EXPECT_EQ(r.final_dist.size(), 68u);
  EXPECT_EQ(r.final_dist.front().id, 0);
}

TEST(Sampler, OrderParsing) {
  auto order =
      parse_sampler_order("penalties;dry;top_n_sigma;top_k;typ_p;top_p;min_p;xtc;temperature");
  ASSERT_TRUE(order.has_value());
  EXPECT_EQ(*order, default_sampler_order());
  EXPECT_EQ(sampler_order_string(*order),
            "penalties;dry;top_n_sigma;top_k;typ_p;top_p;min_p;xtc;temperature");
  order = parse_sampler_order("Top-K; nucleus;temp;typical;minp");
  ASSERT_TRUE(order.has_value());
  EXPECT_EQ(*order, (std::vector<SamplerStage>{SamplerStage::kTopK, SamplerStage::kTopP,
                                               SamplerStage::kTemperature, SamplerStage::kTypicalP,
                                               SamplerStage::kMinP}));
  auto bad = parse_sampler_order("top_k;bogus;temp");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.status().message().find("'bogus'"), std::string::npos) << bad.status().message();
  EXPECT_TRUE(parse_sampler_order("")->empty());
}

TEST(Sampler, OrderMatters) {
  // {.5, .3, .2}: min_p 0.5 then T=2 keeps {.5, .3} -> sqrt-weights {0.563508, 0.436492};
  // T=2 first flattens to {.4154, .3218, .2628}: min_p 0.5 (cut 0.2077) keeps all three.
  SamplerParams p;
  p.min_p = 0.5f;
  p.temp = 2.0f;
  p.samplers = *parse_sampler_order("min_p;temperature");
  expect_dist(run_stages(p, {0.5f, 0.3f, 0.2f}).final_dist, {0.563508f, 0.436492f});
  p.samplers = *parse_sampler_order("temperature;min_p");
  expect_dist(run_stages(p, {0.5f, 0.3f, 0.2f}).final_dist, {0.415446f, 0.321803f, 0.262751f});
}

TEST(Sampler, DefaultsMatchLlamaCpp) {
  const SamplerParams p;
  EXPECT_EQ(p.seed, 0xFFFFFFFFu);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_FLOAT_EQ(p.top_p, 0.95f);
  EXPECT_FLOAT_EQ(p.min_p, 0.05f);
  EXPECT_FLOAT_EQ(p.temp, 0.8f);
  EXPECT_FLOAT_EQ(p.typ_p, 1.0f);
  EXPECT_FLOAT_EQ(p.top_n_sigma, -1.0f);
  EXPECT_EQ(p.penalty_last_n, 64);
  EXPECT_FLOAT_EQ(p.penalty_repeat, 1.0f);
  EXPECT_FLOAT_EQ(p.dry_base, 1.75f);
  EXPECT_EQ(p.dry_allowed_length, 2);
  EXPECT_EQ(p.dry_penalty_last_n, -1);
  EXPECT_EQ(p.dry_sequence_breakers, (std::vector<std::string>{"\n", ":", "\"", "*"}));
  EXPECT_FLOAT_EQ(p.xtc_threshold, 0.1f);
  EXPECT_FLOAT_EQ(p.mirostat_tau, 5.0f);
  EXPECT_FLOAT_EQ(p.mirostat_eta, 0.1f);
  auto chain = SamplerChain::create(p, with_vocab(10));
  ASSERT_TRUE(chain.has_value());
  EXPECT_EQ(chain->describe(),
            "logits -> penalties -> dry -> top_n_sigma -> top_k -> typ_p -> top_p -> min_p -> "
            "xtc -> temperature -> dist");
}

TEST(Sampler, StageRecords) {
  SamplerParams p;
  p.seed = 1;
  p.top_k = 2;
  auto chain = SamplerChain::create(p, with_vocab(4));
  ASSERT_TRUE(chain.has_value());
  const auto logits = logits_of(kP4);
  auto r = chain->sample(logits, opts(true));
  ASSERT_TRUE(r.has_value());
  std::vector<std::string> names;
  for (const auto& s : r->stages) names.push_back(s.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"logits", "penalties", "dry", "top_n_sigma", "top_k", "typ_p",
                                      "top_p", "min_p", "xtc", "temperature", "dist"}));
  expect_dist(r->stages[0].candidates, {0.4f, 0.3f, 0.2f, 0.1f});
  expect_dist(r->stages[4].candidates, {0.571429f, 0.428571f});
  // T = 0.8 on {ln .4, ln .3}: p ∝ {.4^1.25, .3^1.25} = {0.588944, 0.411056}.
  expect_dist(r->stages.back().candidates, {0.588944f, 0.411056f});
  EXPECT_FLOAT_EQ(r->prob, by_id(r->final_candidates)[r->token]);
  // record_top truncates.
  auto r2 = chain->sample(logits, opts(true, 1));
  EXPECT_EQ(r2->stages[0].candidates.size(), 1u);
}

std::vector<int32_t> generate(uint32_t seed, int n, int32_t n_vocab, uint32_t logit_seed) {
  SamplerParams p;
  p.seed = seed;
  p.penalty_repeat = 1.1f;
  p.xtc_probability = 0.5f;
  p.dry_multiplier = 0.8f;
  p.dry_sequence_breakers = {};
  auto chain = SamplerChain::create(p, with_vocab(n_vocab));
  std::mt19937 rng(logit_seed);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    for (auto& x : logits) x = normal(rng);
    auto r = chain->sample(logits);
    out.push_back(r->token);
    EXPECT_TRUE(chain->accept(r->token).ok());
  }
  return out;
}

TEST(Sampler, SameSeedSameOutput) {
  const auto a = generate(42, 200, 1000, 7);
  EXPECT_EQ(a, generate(42, 200, 1000, 7));
  EXPECT_NE(a, generate(43, 200, 1000, 7));
}

TEST(Sampler, DeterministicAcrossThreadCounts) {
  // Sampling is single-threaded per sequence and keeps no global state: any number of
  // concurrently running chains with the same seed produce the same tokens.
  const auto reference = generate(1234, 100, 5000, 3);
  for (int n_threads : {1, 2, 4, 8}) {
    ThreadPool pool(n_threads);
    std::vector<std::vector<int32_t>> outs(static_cast<size_t>(n_threads));
    pool.run_on_all([&](int t) { outs[static_cast<size_t>(t)] = generate(1234, 100, 5000, 3); });
    for (const auto& o : outs) EXPECT_EQ(o, reference) << n_threads << " threads";
  }
}

TEST(Sampler, RandomSeedIsResolvedAndReported) {
  SamplerParams p;  // seed -1
  auto a = SamplerChain::create(p, with_vocab(10));
  auto b = SamplerChain::create(p, with_vocab(10));
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_NE(a->seed(), kRandomSeed);
  // Replaying with the reported seed gives the same tokens.
  p.seed = a->seed();
  auto c = SamplerChain::create(p, with_vocab(10));
  const std::vector<float> logits = {1, 2, 3, 1, 2, 3, 1, 2, 3, 0};
  for (int i = 0; i < 20; ++i) EXPECT_EQ(a->sample(logits)->token, c->sample(logits)->token);
}

TEST(Sampler, ErrorsNameTheField) {
  SamplerParams p;
  p.mirostat = 3;
  EXPECT_NE(SamplerChain::create(p, with_vocab(4)).status().message().find("--mirostat"),
            std::string::npos);
  p = {};
  p.penalty_last_n = -2;
  EXPECT_NE(SamplerChain::create(p, with_vocab(4)).status().message().find("--repeat-last-n"),
            std::string::npos);
  auto chain = SamplerChain::create({}, with_vocab(4));
  const std::vector<float> wrong(5, 0.0f);
  EXPECT_FALSE(chain->sample(wrong).has_value());
  // Everything banned.
  p = {};
  p.logit_bias = {{0, -INFINITY}, {1, -INFINITY}};
  auto banned = SamplerChain::create(p, with_vocab(2));
  const std::vector<float> two = {0.0f, 0.0f};
  EXPECT_FALSE(banned->sample(two).has_value());
}

TEST(Logprobs, RawDistributionTopKAndEntropy) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f, 3.0f, -INFINITY};
  const double z = std::log(std::exp(1.0) + std::exp(2.0) + 2 * std::exp(3.0));
  const auto lp = compute_logprobs(logits, 1, 3);
  EXPECT_NEAR(lp.logprob, 2.0 - z, 1e-12);
  ASSERT_EQ(lp.top.size(), 3u);
  EXPECT_EQ(lp.top[0].token, 2);  // tie with 3: lower id first
  EXPECT_EQ(lp.top[1].token, 3);
  EXPECT_EQ(lp.top[2].token, 1);
  EXPECT_NEAR(lp.top[0].logprob, 3.0 - z, 1e-12);
  double h = 0;
  for (float x : logits) {
    if (x == -INFINITY) continue;
    const double p = std::exp(x - z);
    h -= p * std::log(p);
  }
  EXPECT_NEAR(lp.entropy, h, 1e-12);
  // Exactly min(k, n_vocab) alternatives, the -inf one last.
  const auto all = compute_logprobs(logits, 4, 20);
  ASSERT_EQ(all.top.size(), 5u);
  EXPECT_EQ(all.top[4].token, 4);
  EXPECT_TRUE(std::isinf(all.logprob));
  EXPECT_TRUE(compute_logprobs(logits, 0, 0).top.empty());
}

TEST(Logprobs, PostTransformAndJson) {
  SamplerParams p;
  p.seed = 3;
  p.top_k = 2;
  p.temp = 1.0f;
  auto chain = SamplerChain::create(p, with_vocab(4));
  const auto logits = logits_of(kP4);
  auto r = chain->sample(logits);
  ASSERT_TRUE(r.has_value());
  const auto lp = compute_logprobs(logits, r->token, 3, &*r);
  EXPECT_NEAR(lp.logprob, std::log(kP4[static_cast<size_t>(r->token)]), 1e-6);
  EXPECT_NEAR(lp.post_prob, r->token == 3 ? 0.571429 : 0.428571, 1e-5);
  ASSERT_EQ(lp.post_top.size(), 2u);  // only two candidates survive top_k
  const std::vector<std::string> pieces = {"a", "\xC3", "h\xC3\xA9", " x"};
  const auto j = logprobs_to_json(lp, [&](int32_t id) { return pieces[static_cast<size_t>(id)]; });
  EXPECT_EQ(j["top_logprobs"].size(), 3u);
  EXPECT_EQ(j["top_logprobs"][0]["token"], " x");
  EXPECT_EQ(j["top_logprobs"][0]["bytes"], nlohmann::json::array({32, 120}));
  EXPECT_EQ(j["top_logprobs"][1]["token"], "h\xC3\xA9");
  for (const char* key : {"token", "logprob", "bytes", "top_logprobs", "entropy", "post_prob"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  // A lone lead byte becomes U+FFFD in "token" but stays exact in "bytes".
  TokenLogprobs one;
  one.token = 1;
  one.logprob = -INFINITY;
  const auto j1 =
      logprobs_to_json(one, [&](int32_t id) { return pieces[static_cast<size_t>(id)]; });
  EXPECT_EQ(j1["token"], "\xEF\xBF\xBD");
  EXPECT_EQ(j1["bytes"], nlohmann::json::array({0xC3}));
  EXPECT_EQ(j1["logprob"], -9999.0);
  EXPECT_NO_THROW((void)j.dump());
}

}  // namespace
}  // namespace loupe::sample
