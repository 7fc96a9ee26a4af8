// A persistent pool of worker threads. The calling thread takes part as worker 0, so a
// pool of n threads starts n-1 OS threads, once. Hand-offs spin briefly (a decode step
// issues hundreds of small jobs per token) and then sleep on a futex; a pool with more
// threads than cores never spins. Work is split into fixed chunks whose boundaries do not
// depend on timing, so results are reproducible for any thread count as long as each
// chunk's work is.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace loupe {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // Calls fn(thread_index) once on each of the n_threads threads and waits for all.
  void run_on_all(const std::function<void(int thread_index)>& fn);

  // Splits [0, n) into contiguous chunks of at least `grain` and runs fn(begin, end)
  // on them across the pool; returns when all are done. Chunks are handed out
  // dynamically, so fn must not depend on which thread runs it. Completion waits for
  // chunks, not threads: a worker the OS has not scheduled yet (a busy machine) finds no
  // chunk left and costs the caller nothing.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  static int default_threads();

 private:
  void worker_loop(int index);
  // Claims and runs chunks of the published parallel_for job while its ticket is current.
  void run_chunks(uint64_t job);

  int n_threads_;
  int spin_iterations_;  // 0 when oversubscribed
  std::vector<std::thread> workers_;
  // run_on_all: the job and its number (a worker runs each number once, even when it
  // wakes late and sees it under a later generation).
  std::atomic<const std::function<void(int)>*> job_{nullptr};
  std::atomic<uint64_t> run_id_{0};
  std::atomic<uint64_t> generation_{0};  // bumped per job; odd/even carries nothing
  std::atomic<int> pending_{0};          // workers still running the current job
  std::atomic<bool> stop_{false};
  // parallel_for: ticket = job id (20 bits) | chunk count (22 bits) | next chunk (22 bits),
  // one atomic so a claim names its job and its bound together.
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int64_t> chunks_done_{0};
  const std::function<void(int64_t, int64_t)>* range_fn_ = nullptr;
  int64_t range_n_ = 0;
  int64_t range_chunk_ = 0;
  uint64_t job_id_ = 0;
};

}  // namespace loupe
