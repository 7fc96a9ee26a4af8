// Per-token log-probabilities and alternatives, the data behind OpenAI's `logprobs` and
// llama-server's `n_probs` / `post_sampling_probs`.
//
// `logprob` and `top` come from the model's own distribution: log-softmax of the raw logits,
// before any sampler transform, in double precision (log-sum-exp). The `post_*` fields describe
// the distribution the token was actually drawn from (SampleResult::final_candidates).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sample/sampler.h"

namespace loupe::sample {

struct TokenLogprob {
  int32_t token;
  double logprob;  // natural log; -inf for a token the logits rule out
};

struct TokenLogprobs {
  int32_t token = -1;
  double logprob = 0.0;                // raw model distribution
  std::vector<TokenLogprob> top;       // exactly min(k, n_vocab), by probability, ties by lower id
  double entropy = 0.0;                // nats, raw model distribution
  double post_prob = 0.0;              // probability after the sampler stages (0: not a candidate)
  std::vector<TokenLogprob> post_top;  // top of the post-transform distribution (at most k)
};

// logits: [n_vocab] raw; k: number of alternatives (OpenAI allows 0..20); post: the sample the
// token came from, or null when only the raw distribution is wanted.
TokenLogprobs compute_logprobs(std::span<const float> logits, int32_t token, int32_t k,
                               const SampleResult* post = nullptr);

// OpenAI's ChatCompletionTokenLogprob:
//   {"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}
// plus our extras "id", "entropy", "post_prob" and "post_top_logprobs". `piece` gives a token's
// bytes; a piece that is not valid UTF-8 is rendered with U+FFFD in "token" while "bytes" keeps
// the exact bytes. -inf becomes -9999.0, OpenAI's "very unlikely".
nlohmann::json logprobs_to_json(const TokenLogprobs& lp,
                                const std::function<std::string(int32_t)>& piece);

}  // namespace loupe::sample
