#include "base/thread_pool.h"

#include <algorithm>

namespace loupe {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// About 50-100 µs of polling before sleeping: longer than the serial gaps between the
// matmuls of one token, far shorter than the gap between tokens of an idle session.
constexpr int kSpinIterations = 4000;

constexpr int kCountBits = 22;
constexpr uint64_t kCountMask = (uint64_t{1} << kCountBits) - 1;

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  const unsigned cores = std::thread::hardware_concurrency();
  spin_iterations_ = cores != 0 && static_cast<unsigned>(n_threads_) <= cores ? kSpinIterations : 0;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

int ThreadPool::default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  uint64_t last_run = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int i = 0; g == seen && i < spin_iterations_; ++i) {
      cpu_relax();
      g = generation_.load(std::memory_order_acquire);
    }
    while (g == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    const std::function<void(int)>* job = job_.load(std::memory_order_acquire);
    if (job == nullptr) {  // a parallel_for: help with its chunks, if any are left
      run_chunks(ticket_.load(std::memory_order_acquire) >> (2 * kCountBits));
      continue;
    }
    const uint64_t run = run_id_.load(std::memory_order_acquire);
    if (run == last_run) continue;
    last_run = run;
    (*job)(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

void ThreadPool::run_on_all(const std::function<void(int)>& fn) {
  if (n_threads_ == 1) {
    fn(0);
    return;
  }
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  run_id_.fetch_add(1, std::memory_order_relaxed);
  job_.store(&fn, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  fn(0);
  int left = pending_.load(std::memory_order_acquire);
  for (int i = 0; left != 0 && i < spin_iterations_; ++i) {
    cpu_relax();
    left = pending_.load(std::memory_order_acquire);
  }
  while (left != 0) {
    pending_.wait(left, std::memory_order_acquire);
    left = pending_.load(std::memory_order_acquire);
  }
  job_.store(nullptr, std::memory_order_release);
}

void ThreadPool::run_chunks(uint64_t job) {
  uint64_t t = ticket_.load(std::memory_order_acquire);
  for (;;) {
    if ((t >> (2 * kCountBits)) != job) return;  // a later job: not ours to touch
    const uint64_t count = (t >> kCountBits) & kCountMask;
    const uint64_t next = t & kCountMask;
    if (next >= count) return;
    if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel,
                                       std::memory_order_acquire))
      continue;
    // Chunk `next` of the current job is ours and not done, so the job (and range_fn_)
    // is alive until we report it.
    const int64_t begin = static_cast<int64_t>(next) * range_chunk_;
    (*range_fn_)(begin, std::min(range_n_, begin + range_chunk_));
    if (chunks_done_.fetch_add(1, std::memory_order_acq_rel) + 1 == static_cast<int64_t>(count))
      chunks_done_.notify_one();
    t = ticket_.load(std::memory_order_acquire);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (n_threads_ == 1 || n <= grain) {
    fn(0, n);
    return;
  }
  int64_t chunks = (n + grain - 1) / grain;
  if (chunks > static_cast<int64_t>(kCountMask)) {
    grain = (n + static_cast<int64_t>(kCountMask) - 1) / static_cast<int64_t>(kCountMask);
    chunks = (n + grain - 1) / grain;
  }
  job_id_ = (job_id_ + 1) & ((uint64_t{1} << (64 - 2 * kCountBits)) - 1);
  range_fn_ = &fn;
  range_n_ = n;
  range_chunk_ = grain;
  job_.store(nullptr, std::memory_order_release);
  chunks_done_.store(0, std::memory_order_relaxed);
  ticket_.store((job_id_ << (2 * kCountBits)) | (static_cast<uint64_t>(chunks) << kCountBits),
                std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  run_chunks(job_id_);
  int64_t done = chunks_done_.load(std::memory_order_acquire);
  for (int i = 0; done != chunks && i < spin_iterations_; ++i) {
    cpu_relax();
    done = chunks_done_.load(std::memory_order_acquire);
  }
  while (done != chunks) {
    chunks_done_.wait(done, std::memory_order_acquire);
    done = chunks_done_.load(std::memory_order_acquire);
  }
}

}  // namespace loupe
