// Continuous batching: several requests generate at once over one runtime::Session holding one
// sequence per slot. A worker thread owns the session; each step admits queued requests into
// free slots, then runs ONE forward pass holding the next token of every decoding slot and
// a capped share of the prompts being read, so the weights are read once per step for all of
// them and decoding slots keep streaming while a long prompt is read.
//
// A slot keeps its tokens after its request ends. A new request takes the free slot that
// shares the longest useful prefix with its prompt and reads only the rest (the next turn of
// a chat reuses its conversation). Models with recurrent layers reuse a slot only when its
// cached tokens are a prefix of the prompt: their state cannot be rewound.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/status.h"
#include "engine/generator.h"
#include "engine/model.h"
#include "runtime/session.h"

namespace loupe::engine {

struct SchedulerOptions {
  int n_parallel = 1;      // slots: requests generating at once
  size_t max_queue = 64;   // requests waiting for a slot beyond those a free slot takes at once
  runtime::RunParams run;  // n_ctx is per slot; n_seq is set to n_parallel
};

class Scheduler {
 public:
  // The model must outlive the scheduler.
  static Expected<std::unique_ptr<Scheduler>> create(const Model& model,
                                                     const SchedulerOptions& opt);
  // Stops the worker; requests still queued or running end as kCancelled. Callers blocked in
  // generate() get their result, but must not call into the scheduler afterwards.
  ~Scheduler();

  // Thread-safe and blocking: queues the request, generates it in a slot and returns the
  // result. on_token runs on the calling thread (the worker hands events over through a
  // per-request queue, so a slow consumer never stalls the batch). on_token returning false or
  // *request.cancel becoming true cancels the request within one step; the result then holds
  // exactly the tokens and text streamed (text held back for a possible stop string is
  // dropped rather than flushed). Errors: those of Generator::generate (checked before
  // queueing), and kUnavailable when the queue is full.
  Expected<GenerateResult> generate(const GenerateRequest& request,
                                    const TokenCallback& on_token = {});

  int64_t n_ctx() const { return n_ctx_; }  // per slot
  int n_parallel() const { return static_cast<int>(slots_.size()); }
  const Model& model() const { return model_; }

  struct Stats {
    int active = 0;              // slots generating now
    size_t queued = 0;           // requests waiting for a slot
    int64_t steps = 0;           // forward passes so far
    int64_t batched_tokens = 0;  // tokens they evaluated (> steps when requests share steps)
  };
  Stats stats() const;

 private:
  struct Job;
  struct Slot {
    std::vector<int32_t> cached;  // tokens the sequence holds; n_past(seq) == cached.size()
    std::shared_ptr<Job> job;     // null: free
    size_t n_read = 0;            // prompt tokens in the cache
    bool decoding = false;        // the prompt is read; `next` waits to be evaluated
    int32_t next = -1;
  };

  Scheduler(const Model& model, std::unique_ptr<runtime::Session> session, size_t max_queue);
  void run();
  // Gives queued jobs free slots; returns false when the scheduler stops.
  bool admit();
  void assign(int32_t seq, std::shared_ptr<Job> job);
  void step();
  // Ends the slot's job with its result (or `error`) and frees the slot.
  void finish(int32_t seq, const Status& error = Status());

  const Model& model_;
  std::unique_ptr<runtime::Session> session_;
  const int64_t n_ctx_;
  const size_t max_queue_;
  std::vector<Slot> slots_;  // worker thread only
  uint64_t tickets_ = 0;     // jobs admitted so far (worker only)
  std::vector<float> logits_;

  mutable std::mutex mutex_;  // guards what follows
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  int n_free_ = 0;
  bool stop_ = false;
  Stats stats_;

  std::thread worker_;
};

}  // namespace loupe::engine
