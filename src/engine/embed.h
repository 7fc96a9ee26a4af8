// Embeddings from a generative model: the final normed hidden state of every token
// (llama.cpp's `result_norm`), pooled into one vector and optionally L2-normalized, as
// llama.cpp's --embedding computes them.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/model.h"
#include "runtime/session.h"

namespace loupe::engine {

// How the token vectors become one (llama.cpp's pooling types, minus none and rank).
enum class Pooling {
  kMean,  // the average over all tokens
  kLast,  // the last token's (decoder models: the only one that saw the whole input)
  kCls,   // the first token's
  kCount
};

// "mean", "last", "cls".
const char* pooling_name(Pooling pooling);
Expected<Pooling> parse_pooling(std::string_view name);
// The file's `<arch>.pooling_type` (llama.cpp's numbering: 1 mean, 2 cls, 3 last), else mean.
Pooling default_pooling(const Model& model);

// Evaluates `tokens` on sequence `seq` of `session` (which it resets first, and leaves
// holding them: use a sequence no generation depends on) and returns the pooled vector
// [n_embd], with unit L2 norm when `normalize`. Errors: no tokens, more tokens than the
// context, a token outside the vocabulary.
Expected<std::vector<float>> embed(const Model& model, runtime::Session& session,
                                   std::span<const int32_t> tokens, Pooling pooling, bool normalize,
                                   int32_t seq = 0);

}  // namespace loupe::engine
