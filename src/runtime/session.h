// Running sequences over a loaded model: their KV cache, positions and the forward pass
// (batched prefill of many tokens, or one token at a time; both give the same logits).
// A session holds n_seq independent sequences; one forward pass may advance several of them
// at once (continuous batching), each giving the logits it would give alone.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "model/arch.h"

namespace loupe::runtime {

// Runtime choices, apart from the file's immutable Hparams.
struct RunParams {
  int n_threads = 0;                 // 0: ThreadPool::default_threads()
  int64_t n_ctx = 0;                 // 0: min(context_length, 4096)
  DType cache_type_k = DType::kF16;  // F16 (default), F32 or Q8_0
  DType cache_type_v = DType::kF16;
  int32_t n_seq = 1;  // independent sequences, n_ctx cells each (memory: n_seq x one sequence)
};

// One sequence's share of a batched forward pass: `tokens` go at positions n_past(seq)..,
// and `logit_rows` (indices into `tokens`) name the positions whose logits are wanted.
struct SeqBatch {
  int32_t seq = 0;
  std::span<const int32_t> tokens;
  std::span<const int64_t> logit_rows;
};

// Sees named intermediate tensors as they are computed: `blk.3.attn_out`,
// `result_norm`, ... `data` is [n_rows, n_cols] row-major, valid during the call only.
// With no observer attached each op costs one branch.
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void observe(std::string_view name, const float* data, int64_t n_rows,
                       int64_t n_cols) = 0;
};

class Session {
 public:
  static Expected<std::unique_ptr<Session>> create(const model::Model& model,
                                                   const RunParams& params);
  ~Session();

  // Appends `tokens` to sequence 0 at positions n_past().. and evaluates them as one batch.
  // For each index i in `logit_rows` (indices into `tokens`), writes that position's logits
  // to logits[k * n_vocab ..] in order. Fails (changing nothing) when the context is full or
  // a token id is out of range.
  Status eval(std::span<const int32_t> tokens, std::span<const int64_t> logit_rows, float* logits);

  // Evaluates every chunk in one forward pass: the weight matmuls see the tokens of all chunks
  // as one batch (the weights are read once per pass), attention and recurrent state stay per
  // sequence. The kernels compute each row the same whatever the batch around it, so each
  // chunk's logits are bit-identical to evaluating it alone. Writes the logits of every
  // requested row, in chunk order, then row order: [n_rows_total, n_vocab]. At most one
  // chunk per sequence. Fails (changing nothing) on a sequence out of range or named twice,
  // a full context or a bad token id.
  Status eval_batch(std::span<const SeqBatch> chunks, float* logits);

  // Like eval on sequence `seq`, but instead of logits writes every token's final normed hidden
  // state (llama.cpp's `result_norm`: the output norm of the last layer's output, the input of
  // the output projection) to hidden[t * n_embd ..]: [n_tokens, n_embd]. For embeddings.
  Status eval_hidden(int32_t seq, std::span<const int32_t> tokens, float* hidden);

  int64_t n_past() const { return n_past_[0]; }
  int64_t n_past(int32_t seq) const { return n_past_[static_cast<size_t>(seq)]; }
  int32_t n_seq() const { return static_cast<int32_t>(n_past_.size()); }
  int64_t n_ctx() const { return n_ctx_; }  // per sequence
  int64_t n_embd() const { return model_.hp.n_embd; }
  int64_t n_vocab() const { return model_.hp.n_vocab; }
  void reset() { reset(0); }
  void reset(int32_t seq) { n_past_[static_cast<size_t>(seq)] = 0; }
  // Keeps the first n positions of `seq`. Attention caches just forget the rest; a recurrent
  // (Gated DeltaNet) state cannot be rewound, so a model with recurrent layers can only
  // truncate to 0 (reset) or to n_past (no-op): anything else is kUnsupported.
  Status truncate(int32_t seq, int64_t n);
  // Whether truncate can keep a prefix shorter than n_past (no recurrent layers).
  bool can_truncate() const { return !has_recurrent_; }
  void set_observer(Observer* observer) { observer_ = observer; }
  const model::Model& model() const { return model_; }

 private:
  struct Impl;
  Session(const model::Model& model, const RunParams& params);
  // Everything eval_batch checks before it changes anything.
  Status validate(std::span<const SeqBatch> chunks) const;
  // The forward pass over validated chunks: logits for the requested rows, or (hidden != null)
  // result_norm for every token instead.
  void forward(std::span<const SeqBatch> chunks, float* logits, float* hidden);
  void delta_net_mixer(int64_t il, float* io, std::span<const int32_t> token_seq);

  const model::Model& model_;
  RunParams params_;
  int64_t n_ctx_ = 0;
  bool has_recurrent_ = false;
  std::vector<int64_t> n_past_;  // [n_seq]
  Observer* observer_ = nullptr;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loupe::runtime
