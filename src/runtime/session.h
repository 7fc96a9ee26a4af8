// A running sequence over a loaded model: its KV cache, positions and the forward pass
// (batched prefill of many tokens, or one token at a time; both give the same logits).
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

  // Appends `tokens` at positions n_past().. and evaluates them as one batch. For each
  // index i in `logit_rows` (indices into `tokens`), writes that position's logits to
  // logits[k * n_vocab ..] in order. Fails (changing nothing) when the context is full
  // or a token id is out of range.
  Status eval(std::span<const int32_t> tokens, std::span<const int64_t> logit_rows, float* logits);

  int64_t n_past() const { return n_past_; }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_vocab() const { return model_.hp.n_vocab; }
  void reset() { n_past_ = 0; }
  void set_observer(Observer* observer) { observer_ = observer; }
  const model::Model& model() const { return model_; }

 private:
  struct Impl;
  Session(const model::Model& model, const RunParams& params);
  void delta_net_mixer(int64_t il, float* io, int64_t n_tokens);

  const model::Model& model_;
  RunParams params_;
  int64_t n_ctx_ = 0;
  int64_t n_past_ = 0;
  Observer* observer_ = nullptr;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loupe::runtime
