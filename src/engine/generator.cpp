#include "engine/generator.h"

#include <algorithm>
#include <chrono>

#include "sample/grammar.h"
#include "tokenizer/tokenizer.h"

namespace loupe::engine {
namespace {

// Prompt tokens evaluated per batch: large enough for batched matmuls, small enough that a
// cancel request is seen promptly and activations stay modest.
constexpr size_t kPrefillChunk = 512;

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::kEog:
      return "eog";
    case StopReason::kStopString:
      return "stop";
    case StopReason::kLength:
      return "length";
    case StopReason::kContext:
      return "context";
    case StopReason::kCancelled:
      return "cancelled";
    case StopReason::kCount:
      break;
  }
  return "?";
}

const char* finish_reason(StopReason reason) {
  switch (reason) {
    case StopReason::kEog:
    case StopReason::kStopString:
      return "stop";
    case StopReason::kLength:
    case StopReason::kContext:
      return "length";
    case StopReason::kCancelled:
      return "cancelled";
    case StopReason::kCount:
      break;
  }
  return "?";
}

double Timings::prompt_per_second() const {
  return prompt_ms > 0.0 ? 1e3 * static_cast<double>(prompt_n) / prompt_ms : 0.0;
}

double Timings::predicted_per_second() const {
  return predicted_ms > 0.0 ? 1e3 * static_cast<double>(predicted_n) / predicted_ms : 0.0;
}

nlohmann::json Timings::to_json() const {
  auto per_token = [](double ms, int64_t n) { return n > 0 ? ms / static_cast<double>(n) : 0.0; };
  return {{"cache_n", cache_n},
          {"prompt_n", prompt_n},
          {"prompt_ms", prompt_ms},
          {"prompt_per_token_ms", per_token(prompt_ms, prompt_n)},
          {"prompt_per_second", prompt_per_second()},
          {"predicted_n", predicted_n},
          {"predicted_ms", predicted_ms},
          {"predicted_per_token_ms", per_token(predicted_ms, predicted_n)},
          {"predicted_per_second", predicted_per_second()}};
}

StopScan scan_stop_strings(std::string_view pending, const std::vector<std::string>& stops) {
  StopScan scan;
  scan.release = pending.size();
  for (size_t k = 0; k < stops.size(); ++k) {
    const std::string& s = stops[k];
    if (s.empty()) continue;
    const size_t at = pending.find(s);
    if (at != std::string_view::npos && (scan.match == std::string::npos || at < scan.match)) {
      scan.match = at;
      scan.match_index = k;
    }
  }
  if (scan.match != std::string::npos) {
    scan.release = scan.match;
    return scan;
  }
  // Hold back the longest tail that a stop string begins with: the next token may complete it.
  size_t hold = 0;
  for (const std::string& s : stops) {
    for (size_t n = std::min(s.size() - (s.empty() ? 0 : 1), pending.size()); n > hold; --n) {
      if (pending.substr(pending.size() - n) == std::string_view(s).substr(0, n)) {
        hold = n;
        break;
      }
    }
  }
  scan.release = pending.size() - hold;
  return scan;
}

Generation::Generation(const Model& model, const GenerateRequest& request, int64_t n_ctx,
                       std::shared_ptr<const sample::Grammar> grammar, sample::SamplerChain chain)
    : model_(model),
      req_(request),
      n_ctx_(n_ctx),
      grammar_(std::move(grammar)),
      chain_(std::move(chain)),
      decoder_(model.tokenizer()) {}

Expected<std::unique_ptr<Generation>> Generation::start(const Model& model,
                                                        const GenerateRequest& req, int64_t n_ctx) {
  const tokenizer::Tokenizer& tok = model.tokenizer();
  if (req.prompt.empty())
    return make_error(ErrorCode::kInvalidArgument, "the prompt is empty: nothing to continue");
  for (size_t i = 0; i < req.prompt.size(); ++i)
    if (!tok.valid(req.prompt[i]))
      return make_error(ErrorCode::kInvalidArgument,
                        "prompt token {} (at position {}) is outside the vocabulary of {} tokens",
                        req.prompt[i], i, tok.n_vocab());
  if (static_cast<int64_t>(req.prompt.size()) > n_ctx)
    return make_error(ErrorCode::kOutOfRange,
                      "the prompt has {} tokens, more than the context size {}: shorten it or "
                      "raise the context with -c",
                      req.prompt.size(), n_ctx);

  std::shared_ptr<const sample::Grammar> grammar;
  if (!req.grammar.empty()) {
    auto parsed = sample::Grammar::parse(req.grammar);
    if (!parsed) return parsed.status().with_context("grammar");
    grammar = std::make_shared<const sample::Grammar>(std::move(*parsed));
  }
  LOUPE_ASSIGN_OR_RETURN(
      sample::SamplerChain chain,
      sample::SamplerChain::create(req.sampler, model.chain_setup(n_ctx, grammar)));
  // Penalties and DRY look at the prompt too, as llama.cpp feeds it to the sampler.
  for (int32_t t : req.prompt) LOUPE_TRY(chain.accept(t, /*is_generated=*/false));

  std::unique_ptr<Generation> gen(
      new Generation(model, req, n_ctx, std::move(grammar), std::move(chain)));
  gen->res_.seed = gen->chain_.seed();
  gen->res_.n_prompt = static_cast<int64_t>(req.prompt.size());
  gen->res_.stop_reason = StopReason::kLength;
  return gen;
}

void Generation::begin_prefill(int64_t cache_n) {
  res_.timings.cache_n = cache_n;
  res_.timings.prompt_n = static_cast<int64_t>(req_.prompt.size()) - cache_n;
  t_prefill_ = std::chrono::steady_clock::now();
}

void Generation::end_prefill() {
  res_.timings.prompt_ms = ms_since(t_prefill_);
  t_decode_ = std::chrono::steady_clock::now();
}

void Generation::cancel() {
  if (over_) return;
  res_.stop_reason = StopReason::kCancelled;
  over_ = true;
}

Expected<std::optional<int32_t>> Generation::next(std::span<const float> logits, int64_t n_past,
                                                  const TokenCallback& on_token) {
  if (over_) return std::optional<int32_t>();
  decoded_ = true;
  const tokenizer::Tokenizer& tok = model_.tokenizer();
  const int64_t i = static_cast<int64_t>(res_.tokens.size());
  auto stop = [&](StopReason reason) {
    res_.stop_reason = reason;
    over_ = true;
    return std::optional<int32_t>();
  };
  if (req_.cancel != nullptr && req_.cancel->load()) return stop(StopReason::kCancelled);

  sample::SampleOptions options;
  options.n_remaining = req_.n_predict < 0 ? -1 : static_cast<int32_t>(req_.n_predict - i);
  LOUPE_ASSIGN_OR_RETURN(sample::SampleResult sampled, chain_.sample(logits, options));
  const int32_t token = sampled.token;
  if (!req_.sampler.ignore_eos && tok.is_eog(token)) return stop(StopReason::kEog);
  LOUPE_TRY(chain_.accept(token, /*is_generated=*/true));
  res_.tokens.push_back(token);
  if (req_.n_logprobs >= 0)
    res_.logprobs.push_back(sample::compute_logprobs(logits, token, req_.n_logprobs, &sampled));

  const std::string piece = tok.token_to_piece(token, /*special=*/false);
  pending_ += decoder_.push(token);
  const StopScan scan = scan_stop_strings(pending_, req_.stop);
  const std::string released = pending_.substr(0, scan.release);
  pending_.erase(0, scan.release);
  res_.text += released;
  bool go_on = true;
  if (on_token) {
    TokenEvent ev;
    ev.index = i;
    ev.token = token;
    ev.piece = piece;
    ev.text = released;
    ev.prob = sampled.prob;
    ev.logprobs = req_.n_logprobs >= 0 ? &res_.logprobs.back() : nullptr;
    go_on = on_token(ev);
  }
  if (scan.match != std::string::npos) {
    res_.stop_string = req_.stop[scan.match_index];
    pending_.clear();
    return stop(StopReason::kStopString);
  }
  if (!go_on) return stop(StopReason::kCancelled);
  if (req_.n_predict >= 0 && i + 1 >= req_.n_predict) return stop(StopReason::kLength);
  if (n_past >= n_ctx_) return stop(StopReason::kContext);
  return std::optional<int32_t>(token);
}

Expected<GenerateResult> Generation::finish(const TokenCallback& on_token) {
  if (res_.stop_reason != StopReason::kStopString) {
    pending_ += decoder_.flush();
    if (!pending_.empty()) {
      res_.text += pending_;
      if (on_token) {
        TokenEvent ev;
        ev.index = static_cast<int64_t>(res_.tokens.size());
        ev.text = pending_;
        on_token(ev);
      }
      pending_.clear();
    }
  }
  res_.timings.predicted_n = static_cast<int64_t>(res_.tokens.size());
  if (decoded_) res_.timings.predicted_ms = ms_since(t_decode_);

  if (grammar_ && res_.stop_reason == StopReason::kLength && chain_.grammar() != nullptr &&
      !chain_.grammar()->accepting())
    return make_error(ErrorCode::kOutOfRange,
                      "the output is not complete under the grammar after {} tokens (-n); it "
                      "still needs at least \"{}\": raise -n",
                      res_.tokens.size(), chain_.grammar()->shortest_completion());
  return std::move(res_);
}

Expected<std::unique_ptr<Generator>> Generator::create(const Model& model,
                                                       const runtime::RunParams& params) {
  LOUPE_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Session> session,
                         runtime::Session::create(model.weights(), params));
  std::unique_ptr<Generator> g(new Generator(model, std::move(session)));
  g->logits_.resize(static_cast<size_t>(g->session_->n_vocab()));
  return g;
}

void Generator::reset() {
  session_->reset();
  cached_.clear();
}

Status Generator::prefill(std::span<const int32_t> prompt, size_t from,
                          const std::atomic<bool>* cancel, bool& cancelled) {
  for (size_t at = from; at < prompt.size(); at += kPrefillChunk) {
    if (cancel != nullptr && cancel->load()) {
      cancelled = true;
      return Status();
    }
    const size_t n = std::min(kPrefillChunk, prompt.size() - at);
    const bool last = at + n == prompt.size();
    const int64_t row = static_cast<int64_t>(n) - 1;
    LOUPE_TRY(session_->eval(prompt.subspan(at, n),
                             last ? std::span<const int64_t>(&row, 1) : std::span<const int64_t>(),
                             last ? logits_.data() : nullptr));
    cached_.insert(cached_.end(), prompt.begin() + static_cast<std::ptrdiff_t>(at),
                   prompt.begin() + static_cast<std::ptrdiff_t>(at + n));
  }
  return Status();
}

Expected<GenerateResult> Generator::generate(const GenerateRequest& req,
                                             const TokenCallback& on_token) {
  LOUPE_ASSIGN_OR_RETURN(std::unique_ptr<Generation> gen,
                         Generation::start(model_, req, session_->n_ctx()));

  // Keep the KV cache when the prompt extends what it holds (the next turn of a chat).
  // A prompt that diverges earlier is evaluated from the start (the Scheduler rewinds to the
  // common prefix instead; recurrent layers never can).
  size_t reuse = 0;
  if (cached_.size() < req.prompt.size() &&
      std::equal(cached_.begin(), cached_.end(), req.prompt.begin()) &&
      session_->n_past() == static_cast<int64_t>(cached_.size())) {
    reuse = cached_.size();
  } else {
    reset();
  }
  gen->begin_prefill(static_cast<int64_t>(reuse));
  bool cancelled = false;
  if (Status st = prefill(req.prompt, reuse, req.cancel, cancelled); !st.ok()) {
    reset();
    return st;
  }
  gen->end_prefill();
  if (cancelled) {
    gen->cancel();
    return gen->finish(on_token);
  }
  for (;;) {
    LOUPE_ASSIGN_OR_RETURN(std::optional<int32_t> token,
                           gen->next(logits_, session_->n_past(), on_token));
    if (!token) break;
    const int64_t row = 0;
    if (Status st = session_->eval(std::span<const int32_t>(&*token, 1),
                                   std::span<const int64_t>(&row, 1), logits_.data());
        !st.ok()) {
      reset();
      return st;
    }
    cached_.push_back(*token);
  }
  return gen->finish(on_token);
}

}  // namespace loupe::engine
