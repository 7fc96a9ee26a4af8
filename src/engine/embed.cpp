#include "engine/embed.h"

#include <algorithm>
#include <cmath>

#include "gguf/file.h"

namespace loupe::engine {
namespace {

// Tokens per forward pass: attention is causal, so reading in chunks changes nothing, and it
// bounds the activations of a long input.
constexpr size_t kChunk = 512;

}  // namespace

const char* pooling_name(Pooling pooling) {
  switch (pooling) {
    case Pooling::kMean:
      return "mean";
    case Pooling::kLast:
      return "last";
    case Pooling::kCls:
      return "cls";
    case Pooling::kCount:
      break;
  }
  return "?";
}

Expected<Pooling> parse_pooling(std::string_view name) {
  for (int i = 0; i < static_cast<int>(Pooling::kCount); ++i)
    if (name == pooling_name(static_cast<Pooling>(i))) return static_cast<Pooling>(i);
  return make_error(ErrorCode::kInvalidArgument, "unknown pooling '{}': use mean, last or cls",
                    name);
}

Pooling default_pooling(const Model& model) {
  const model::Model& m = model.weights();
  const int64_t type = m.file ? m.file->get_int_or(m.hp.arch + ".pooling_type", 1) : int64_t{1};
  switch (type) {
    case 2:
      return Pooling::kCls;
    case 3:
      return Pooling::kLast;
    default:
      return Pooling::kMean;
  }
}

Expected<std::vector<float>> embed(const Model& model, runtime::Session& session,
                                   std::span<const int32_t> tokens, Pooling pooling, bool normalize,
                                   int32_t seq) {
  assert(&session.model() == &model.weights() && "the session must run this model");
  const int64_t n_embd = model.hparams().n_embd;
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  if (n_tokens == 0)
    return make_error(ErrorCode::kInvalidArgument, "nothing to embed: the input has no tokens");
  if (n_tokens > session.n_ctx())
    return make_error(ErrorCode::kOutOfRange,
                      "the input has {} tokens, more than the context size {}: shorten it or "
                      "raise the context with -c",
                      n_tokens, session.n_ctx());
  if (seq < 0 || seq >= session.n_seq())
    return make_error(ErrorCode::kInvalidArgument, "sequence {} is outside [0, {})", seq,
                      session.n_seq());
  session.reset(seq);
  std::vector<float> sum(static_cast<size_t>(n_embd), 0.0f);
  std::vector<float> hidden;
  for (size_t at = 0; at < tokens.size(); at += kChunk) {
    const size_t n = std::min(kChunk, tokens.size() - at);
    hidden.resize(n * static_cast<size_t>(n_embd));
    if (Status st = session.eval_hidden(seq, tokens.subspan(at, n), hidden.data()); !st.ok()) {
      session.reset(seq);
      return st;
    }
    const bool has_first = at == 0, has_last = at + n == tokens.size();
    for (size_t t = 0; t < n; ++t) {
      const float* row = hidden.data() + t * static_cast<size_t>(n_embd);
      const bool take = pooling == Pooling::kMean ||
                        (pooling == Pooling::kCls && has_first && t == 0) ||
                        (pooling == Pooling::kLast && has_last && t + 1 == n);
      if (!take) continue;
      for (int64_t j = 0; j < n_embd; ++j) sum[static_cast<size_t>(j)] += row[j];
    }
  }
  if (pooling == Pooling::kMean)
    for (float& e : sum) e /= static_cast<float>(n_tokens);
  if (normalize) {
    // llama.cpp's common_embd_normalize with p = 2: the norm in double.
    double norm = 0.0;
    for (float e : sum) norm += static_cast<double>(e) * e;
    norm = std::sqrt(norm);
    const float scale = norm > 0.0 ? static_cast<float>(1.0 / norm) : 0.0f;
    for (float& e : sum) e *= scale;
  }
  return sum;
}

}  // namespace loupe::engine
