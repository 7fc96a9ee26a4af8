// The sampler chain: llama.cpp's common_sampler (common/sampling.cpp) over src/llama-sampler.cpp's
// stages, with the same parameter names, defaults, stage order and semantics:
//   logit bias -> [grammar] -> stages in `samplers` order -> dist (seeded draw)
//   mirostat 1/2 replaces the stages: logit bias -> [grammar] -> temperature -> mirostat.
// Differences, on purpose: ties in sorting break by lower token id (deterministic everywhere);
// grammar-rejected tokens are removed rather than set to -inf; `penalty_last_n` and
// `dry_penalty_last_n` of -1 mean the context size, as their flags document.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "sample/candidates.h"
#include "sample/grammar.h"
#include "sample/grammar_matcher.h"

namespace loupe::sample {

enum class SamplerStage {
  kPenalties,
  kDry,
  kTopNSigma,
  kTopK,
  kTypicalP,
  kTopP,
  kMinP,
  kXtc,
  kTemperature,
  kCount
};

// Canonical llama.cpp name: "penalties", "dry", "top_n_sigma", "top_k", "typ_p", "top_p",
// "min_p", "xtc", "temperature".
const char* stage_name(SamplerStage stage);
// `--samplers`: names separated by ';' (also ','), case-insensitive, with llama.cpp's aliases
// (top-k, topk, nucleus, typical, typ, temp, min-p, ...). An unknown name is an error that
// names it and lists the valid ones. Empty text gives an empty chain (just the final draw).
Expected<std::vector<SamplerStage>> parse_sampler_order(std::string_view text);
std::string sampler_order_string(std::span<const SamplerStage> stages);
// "penalties;dry;top_n_sigma;top_k;typ_p;top_p;min_p;xtc;temperature"
std::vector<SamplerStage> default_sampler_order();

// llama.cpp's LLAMA_DEFAULT_SEED: `--seed -1` (parsed as uint32) means a random seed.
constexpr uint32_t kRandomSeed = 0xFFFFFFFFu;

struct LogitBias {
  int32_t token;
  float bias;  // -INFINITY bans the token
};

// common_params_sampling, same names and defaults.
struct SamplerParams {
  uint32_t seed = kRandomSeed;
  int32_t min_keep = 0;          // 0 = off; otherwise stages keep at least this many candidates
  int32_t top_k = 40;            // <= 0: off
  float top_p = 0.95f;           // 1.0: off
  float min_p = 0.05f;           // 0.0: off
  float xtc_probability = 0.0f;  // 0.0: off
  float xtc_threshold = 0.10f;   // > 0.5: off
  float typ_p = 1.0f;            // 1.0: off
  float temp = 0.80f;            // <= 0: greedy (only the most likely token stays)
  float dynatemp_range = 0.0f;   // 0.0: off
  float dynatemp_exponent = 1.0f;
  int32_t penalty_last_n = 64;  // 0: off, -1: context size
  float penalty_repeat = 1.0f;  // 1.0: off
  float penalty_freq = 0.0f;
  float penalty_present = 0.0f;
  float dry_multiplier = 0.0f;  // 0.0: off
  float dry_base = 1.75f;
  int32_t dry_allowed_length = 2;
  int32_t dry_penalty_last_n = -1;  // 0: off, -1: context size
  std::vector<std::string> dry_sequence_breakers = {"\n", ":", "\"", "*"};
  int32_t mirostat = 0;  // 0 off, 1 Mirostat, 2 Mirostat 2.0
  float mirostat_tau = 5.0f;
  float mirostat_eta = 0.1f;
  float top_n_sigma = -1.0f;  // <= 0: off
  bool ignore_eos = false;    // bans the vocabulary's end-of-generation tokens
  std::vector<LogitBias> logit_bias;
  std::vector<SamplerStage> samplers = default_sampler_order();
};

// What the chain needs to know about the model. Only n_vocab is required.
struct ChainSetup {
  int32_t n_vocab = 0;
  int32_t n_ctx = 4096;  // resolves last_n = -1 (llama.cpp: context size / n_ctx_train for DRY)
  // Token pieces and end-of-generation ids: needed for a grammar, DRY sequence breakers and
  // ignore_eos. Build once per vocabulary and share.
  std::shared_ptr<const TokenVocab> vocab;
  // Tokenizes text without special tokens; DRY uses it for the tails of sequence breakers that
  // straddle tokens. Without it those multi-token breakers are skipped.
  std::function<std::vector<int32_t>(const std::string&)> tokenize;
  // A grammar to constrain the output (GBNF text via Grammar::parse, JSON Schema via
  // json_schema_to_grammar + Grammar::parse).
  std::shared_ptr<const Grammar> grammar;
};

struct StageRecord {
  std::string name;  // "logit_bias", "grammar", a stage_name(), "dist", "mirostat", ...
  // The candidates after the stage with p = softmax over them (temperature-scaled logits
  // included), sorted by p descending (ties: lower id first); truncated to
  // SampleOptions::record_top when that is > 0.
  std::vector<Candidate> candidates;
};

struct SampleOptions {
  bool record_stages = false;
  int32_t record_top = 0;  // 0: every candidate
  // Tokens left in the budget including this one (-1: unlimited). With a grammar, only tokens
  // after which the grammar can still be completed in time are allowed (budget steering); an
  // impossible budget is a kOutOfRange error.
  int32_t n_remaining = -1;
  // Apply the grammar before the stages instead of llama.cpp's default of drawing first and
  // re-drawing with the grammar only when the draw is rejected.
  bool grammar_first = false;
};

struct SampleResult {
  int32_t token = -1;
  // Probability of `token` in the distribution it was drawn from (after all transforms).
  float prob = 0.0f;
  // That distribution: candidates with p, sorted by p descending (ties: lower id first).
  std::vector<Candidate> final_candidates;
  std::vector<StageRecord> stages;  // when SampleOptions::record_stages
  bool grammar_resampled = false;   // the first draw was rejected by the grammar
};

class SamplerChain {
 public:
  // Errors: invalid parameters (naming the field), a logit bias outside the vocabulary.
  static Expected<SamplerChain> create(const SamplerParams& params, const ChainSetup& setup);

  // logits: [n_vocab], the model's raw output for the next position.
  Expected<SampleResult> sample(std::span<const float> logits, const SampleOptions& options = {});

  // Records a token of the sequence: penalties and DRY see every accepted token (prompt
  // included, as llama.cpp's server feeds them); the grammar advances only for generated ones.
  Status accept(int32_t token, bool is_generated = true);

  // Forgets the history, restarts the grammar and the RNGs (same seed).
  void reset();

  uint32_t seed() const { return seed_; }  // the seed in use (random ones resolved)
  const SamplerParams& params() const { return params_; }
  // "logits -> logit_bias -> penalties -> ... -> dist", as common_sampler_print.
  std::string describe() const;
  GrammarMatcher* grammar() { return grammar_.get(); }

 private:
  SamplerChain() = default;
  Status run_chain(std::span<const float> logits, const SampleOptions& options, bool with_grammar,
                   SampleResult& result);
  void apply_stage(SamplerStage stage, Candidates& c);
  void apply_penalties(Candidates& c) const;
  void apply_dry(Candidates& c);
  void apply_xtc(Candidates& c);
  int32_t select_dist(Candidates& c);
  int32_t select_mirostat(Candidates& c);
  int32_t select_mirostat_v2(Candidates& c);
  void process_breakers();

  SamplerParams params_;
  ChainSetup setup_;
  uint32_t seed_ = 0;
  int32_t penalty_last_n_ = 0;
  int32_t dry_last_n_ = 0;
  std::mt19937 rng_dist_, rng_xtc_, rng_mirostat_;
  float mirostat_mu_ = 0.0f;
  std::vector<int32_t> history_;      // accepted tokens, newest last (bounded)
  std::vector<int32_t> token_count_;  // occurrences in the penalty window, [n_vocab]
  // DRY sequence breakers: head token -> tails (empty tail: single-token breaker).
  std::vector<std::pair<int32_t, std::vector<int32_t>>> dry_breakers_;
  std::unique_ptr<GrammarMatcher> grammar_;
};

// Softmax in place over c (p only), llama.cpp's llama_sampler_softmax_impl; sorts if `sort`.
void softmax(Candidates& c, bool sort);
void sort_candidates(Candidates& c);

}  // namespace loupe::sample
