// The generation loop: prefill -> (sample -> detokenize -> stop checks -> decode)*.
//
// A Generator owns one runtime::Session and remembers which tokens its KV cache holds, so a
// request whose prompt extends them (the next turn of a chat) evaluates only the new tokens.
// Each generated token is reported through a callback with the text it releases (complete
// UTF-8; text that could be the start of a stop string is held back until it is decided), its
// log-probabilities when asked, and may cancel the rest by returning false.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "engine/model.h"
#include "runtime/session.h"
#include "sample/logprobs.h"
#include "sample/sampler.h"
#include "tokenizer/tokenizer.h"

namespace loupe::engine {

struct GenerateRequest {
  std::vector<int32_t> prompt;  // token ids, BOS included as wanted
  int32_t n_predict = -1;       // tokens to generate at most; -1: until the context is full
  sample::SamplerParams sampler;
  std::string grammar;            // GBNF constraining the output (root rule "root"); empty: none
  std::vector<std::string> stop;  // stop strings (not part of the returned text)
  int32_t n_logprobs = -1;        // -1: none; K >= 0: logprobs with exactly K alternatives
  // Checked between prefill chunks and before each token (Ctrl-C); the callback's return
  // value cancels too.
  const std::atomic<bool>* cancel = nullptr;
};

struct TokenEvent {
  int64_t index = 0;       // position among the generated tokens
  int32_t token = -1;      // -1: the final flush of held-back text, no token
  std::string_view piece;  // the token's own bytes (may be part of a UTF-8 character)
  std::string_view text;   // text released now
  float prob = 0.0f;       // probability in the distribution it was drawn from
  const sample::TokenLogprobs* logprobs = nullptr;  // when n_logprobs >= 0
};

// Return false to stop generating after this token.
using TokenCallback = std::function<bool(const TokenEvent&)>;

enum class StopReason {
  kEog,         // the model ended its turn (end-of-generation token)
  kStopString,  // a stop string appeared
  kLength,      // n_predict tokens were generated
  kContext,     // the context is full
  kCancelled,   // the callback or the cancel flag stopped it
  kCount
};

// "eog", "stop", "length", "context", "cancelled".
const char* stop_reason_name(StopReason reason);
// OpenAI's finish_reason: "stop" (eog, stop string), "length" (length, context), "cancelled".
const char* finish_reason(StopReason reason);

struct Timings {
  int64_t cache_n = 0;   // prompt tokens reused from the KV cache
  int64_t prompt_n = 0;  // prompt tokens evaluated
  double prompt_ms = 0.0;
  int64_t predicted_n = 0;  // tokens generated
  double predicted_ms = 0.0;
  double prompt_per_second() const;
  double predicted_per_second() const;
  // llama-server's `timings` object.
  nlohmann::json to_json() const;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated tokens (an end-of-generation token is not included)
  std::string text;             // their text, without a matched stop string and what follows
  std::vector<sample::TokenLogprobs> logprobs;  // one per token when n_logprobs >= 0
  StopReason stop_reason = StopReason::kLength;
  std::string stop_string;  // which one matched (kStopString)
  uint32_t seed = 0;        // the seed used (a random one resolved)
  int64_t n_prompt = 0;     // prompt tokens
  Timings timings;
};

// One request's generation apart from the KV cache that serves it: validation, the sampler
// chain and grammar, sampling, logprobs, stop strings, streamed detokenization, the result and
// its timings. Generator drives one at a time over its Session; Scheduler drives one per slot
// of a batched Session. The driver evaluates the prompt, hands over the logits of the last
// evaluated position, and evaluates each token that next() returns.
class Generation {
 public:
  // Validates the request for a context of n_ctx tokens (the errors Generator::generate
  // names) and prepares its sampler chain. The model and the request must outlive it.
  static Expected<std::unique_ptr<Generation>> start(const Model& model,
                                                     const GenerateRequest& request, int64_t n_ctx);

  const GenerateRequest& request() const { return req_; }
  // The prompt's first cache_n tokens are already in the KV cache; the rest is read now.
  void begin_prefill(int64_t cache_n);
  // The prompt has been read: timing moves from prompt to generation.
  void end_prefill();
  // Ends the generation with kCancelled before another token is sampled.
  void cancel();
  // Samples the next token from `logits` (the last evaluated position; n_past positions are
  // in the cache), records it and reports it to on_token. Returns the token to evaluate next,
  // or nullopt when the generation is over (cancelled, end of generation, stop string,
  // n_predict reached, context full): then call finish().
  Expected<std::optional<int32_t>> next(std::span<const float> logits, int64_t n_past,
                                        const TokenCallback& on_token);
  // Reports the held-back text (unless a stop string ended it), closes the timings, and
  // checks that a grammar was completed.
  Expected<GenerateResult> finish(const TokenCallback& on_token);

 private:
  Generation(const Model& model, const GenerateRequest& request, int64_t n_ctx,
             std::shared_ptr<const sample::Grammar> grammar, sample::SamplerChain chain);

  const Model& model_;
  const GenerateRequest& req_;
  int64_t n_ctx_;
  std::shared_ptr<const sample::Grammar> grammar_;
  sample::SamplerChain chain_;
  tokenizer::StreamDecoder decoder_;
  std::string pending_;  // decoded text not yet released (a possible stop string)
  GenerateResult res_;
  bool over_ = false;     // a stop reason is decided
  bool decoded_ = false;  // next() ran at least once
  std::chrono::steady_clock::time_point t_prefill_, t_decode_;
};

class Generator {
 public:
  // The model must outlive the generator.
  static Expected<std::unique_ptr<Generator>> create(const Model& model,
                                                     const runtime::RunParams& params);

  // Errors: an empty or too long prompt (the message says how long and what the limit is),
  // a token id outside the vocabulary, a grammar that does not parse, sampler parameters
  // out of range, and a grammar that cannot be completed within n_predict tokens. Tokens
  // streamed before an error stay streamed.
  Expected<GenerateResult> generate(const GenerateRequest& request,
                                    const TokenCallback& on_token = {});

  int64_t n_ctx() const { return session_->n_ctx(); }
  // Tokens held by the KV cache (prompt and generated, as evaluated).
  const std::vector<int32_t>& cached_tokens() const { return cached_; }
  // Forgets the KV cache; the next request evaluates its whole prompt.
  void reset();
  const Model& model() const { return model_; }

 private:
  Generator(const Model& model, std::unique_ptr<runtime::Session> session)
      : model_(model), session_(std::move(session)) {}
  // Evaluates prompt[from..] in chunks, leaving the last position's logits in logits_.
  Status prefill(std::span<const int32_t> prompt, size_t from, const std::atomic<bool>* cancel,
                 bool& cancelled);

  const Model& model_;
  std::unique_ptr<runtime::Session> session_;
  std::vector<int32_t> cached_;
  std::vector<float> logits_;  // [n_vocab]
};

// Text to release now and text to hold back, given everything decoded so far that has not
// been released: the longest suffix that is a proper prefix of some stop string is held.
// Returns the index in `pending` of the first stop string found (and which), or npos.
struct StopScan {
  size_t match = std::string::npos;  // where a stop string starts in `pending`
  size_t match_index = 0;            // which stop string
  size_t release = 0;                // bytes of `pending` safe to release (match: == match)
};
StopScan scan_stop_strings(std::string_view pending, const std::vector<std::string>& stops);

}  // namespace loupe::engine
