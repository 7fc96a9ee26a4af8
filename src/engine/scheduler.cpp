#include "engine/scheduler.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <string>

namespace loupe::engine {
namespace {

// Prompt tokens read per step over all prefilling slots: enough for batched matmuls, few
// enough that the slots already decoding keep streaming while a long prompt is read.
constexpr size_t kStepPromptTokens = 512;

// A TokenEvent that owns its text, to cross from the worker to the caller's thread.
struct OwnedEvent {
  int64_t index = 0;
  int32_t token = -1;
  std::string piece;
  std::string text;
  float prob = 0.0f;
  std::optional<sample::TokenLogprobs> logprobs;
};

}  // namespace

// One generate() call, shared by the calling thread and the worker.
struct Scheduler::Job {
  std::unique_ptr<Generation> gen;     // worker only once queued; released before `done`
  bool streaming = false;              // the caller has an on_token
  uint64_t ticket = 0;                 // admission order (prompts are read oldest first)
  std::atomic<bool> abandoned{false};  // the caller's on_token returned false

  std::mutex mutex;  // guards what follows
  std::condition_variable ready;
  std::deque<OwnedEvent> events;
  std::optional<Expected<GenerateResult>> result;
  bool done = false;

  void push(const TokenEvent& ev) {
    OwnedEvent e;
    e.index = ev.index;
    e.token = ev.token;
    e.piece = ev.piece;
    e.text = ev.text;
    e.prob = ev.prob;
    if (ev.logprobs != nullptr) e.logprobs = *ev.logprobs;
    {
      std::lock_guard<std::mutex> lock(mutex);
      events.push_back(std::move(e));
    }
    ready.notify_one();
  }
  // What the worker hands Generation as on_token: events go to the caller's queue, and only
  // the caller's answer (through `abandoned`) can stop the job.
  TokenCallback sink() {
    if (!streaming) return {};
    return [this](const TokenEvent& ev) {
      push(ev);
      return true;
    };
  }
};

Expected<std::unique_ptr<Scheduler>> Scheduler::create(const Model& model,
                                                       const SchedulerOptions& opt) {
  if (opt.n_parallel < 1)
    return make_error(ErrorCode::kInvalidArgument, "{} parallel slots: at least 1 is needed",
                      opt.n_parallel);
  runtime::RunParams run = opt.run;
  run.n_seq = opt.n_parallel;
  LOUPE_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Session> session,
                         runtime::Session::create(model.weights(), run));
  std::unique_ptr<Scheduler> s(new Scheduler(model, std::move(session), opt.max_queue));
  s->worker_ = std::thread([p = s.get()] { p->run(); });
  return s;
}

Scheduler::Scheduler(const Model& model, std::unique_ptr<runtime::Session> session,
                     size_t max_queue)
    : model_(model),
      session_(std::move(session)),
      n_ctx_(session_->n_ctx()),
      max_queue_(max_queue),
      slots_(static_cast<size_t>(session_->n_seq())),
      logits_(static_cast<size_t>(session_->n_seq() * session_->n_vocab())),
      n_free_(session_->n_seq()) {}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

Scheduler::Stats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

Expected<GenerateResult> Scheduler::generate(const GenerateRequest& request,
                                             const TokenCallback& on_token) {
  auto job = std::make_shared<Job>();
  LOUPE_ASSIGN_OR_RETURN(job->gen, Generation::start(model_, request, n_ctx_));
  job->streaming = static_cast<bool>(on_token);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_) return make_error(ErrorCode::kUnavailable, "the scheduler is shutting down");
    if (queue_.size() >= static_cast<size_t>(n_free_) + max_queue_)
      return make_error(ErrorCode::kUnavailable,
                        "busy: all {} slots are generating and {} requests are queued (the "
                        "most allowed); try again later",
                        slots_.size(), queue_.size());
    queue_.push_back(job);
    stats_.queued = queue_.size();
  }
  wake_.notify_one();

  // Deliver events here, on the caller's thread, until the worker is done with the job.
  std::string streamed;
  int64_t refused = -1;  // index of the token on_token returned false for
  for (bool done = false; !done;) {
    std::deque<OwnedEvent> batch;
    {
      std::unique_lock<std::mutex> lock(job->mutex);
      job->ready.wait(lock, [&] { return !job->events.empty() || job->done; });
      batch.swap(job->events);
      done = job->done;  // the worker queues every event before it marks the job done
    }
    for (const OwnedEvent& e : batch) {
      if (refused >= 0) break;
      TokenEvent ev;
      ev.index = e.index;
      ev.token = e.token;
      ev.piece = e.piece;
      ev.text = e.text;
      ev.prob = e.prob;
      ev.logprobs = e.logprobs ? &*e.logprobs : nullptr;
      streamed += e.text;
      if (!on_token(ev) && e.token >= 0) {
        refused = e.index;
        job->abandoned = true;
      }
    }
  }
  Expected<GenerateResult> result = std::move(*job->result);
  // The worker may have generated past the token the callback refused: the result holds what
  // was streamed, as Generator's would (a stop string found at that very token still counts).
  if (refused >= 0 && result.has_value()) {
    GenerateResult& r = *result;
    const size_t keep = static_cast<size_t>(refused) + 1;
    if (!(r.stop_reason == StopReason::kStopString && r.tokens.size() == keep)) {
      r.tokens.resize(std::min(r.tokens.size(), keep));
      if (r.logprobs.size() > keep) r.logprobs.resize(keep);
      r.text = std::move(streamed);
      r.stop_reason = StopReason::kCancelled;
      r.stop_string.clear();
      r.timings.predicted_n = static_cast<int64_t>(r.tokens.size());
    }
  }
  return result;
}

void Scheduler::run() {
  while (admit()) step();
  // Stopping: whatever is running or still queued ends as cancelled.
  for (size_t seq = 0; seq < slots_.size(); ++seq) {
    Slot& slot = slots_[seq];
    if (!slot.job) continue;
    if (!slot.decoding) slot.job->gen->end_prefill();
    slot.job->gen->cancel();
    finish(static_cast<int32_t>(seq));
  }
  std::deque<std::shared_ptr<Job>> queued;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queued.swap(queue_);
    stats_.queued = 0;
  }
  for (const std::shared_ptr<Job>& job : queued) {
    job->gen->cancel();
    Expected<GenerateResult> r = job->gen->finish({});
    job->gen.reset();
    {
      std::lock_guard<std::mutex> lock(job->mutex);
      job->result = std::move(r);
      job->done = true;
    }
    job->ready.notify_all();
  }
}

bool Scheduler::admit() {
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait(lock,
             [&] { return stop_ || !queue_.empty() || n_free_ < static_cast<int>(slots_.size()); });
  if (stop_) return false;
  while (n_free_ > 0 && !queue_.empty()) {
    std::shared_ptr<Job> job = std::move(queue_.front());
    queue_.pop_front();
    const std::vector<int32_t>& prompt = job->gen->request().prompt;
    // The free slot where the request costs least: prompt tokens to read plus cached tokens
    // thrown away (a conversation that may come back). A follow-up turn lands in its own
    // slot (the longest prefix); an unrelated prompt takes an empty slot, or else the one
    // with least to lose, rather than one that merely shares its BOS. At least one prompt
    // token is read again, for its logits.
    int32_t best = -1;
    size_t best_reuse = 0, best_cost = 0;
    for (size_t seq = 0; seq < slots_.size(); ++seq) {
      const Slot& s = slots_[seq];
      if (s.job) continue;
      const size_t limit = std::min(s.cached.size(), prompt.size() - 1);
      size_t reuse = 0;
      while (reuse < limit && s.cached[reuse] == prompt[reuse]) ++reuse;
      if (!session_->can_truncate() && reuse != s.cached.size()) reuse = 0;
      const size_t cost = prompt.size() + s.cached.size() - 2 * reuse;
      if (best < 0 || cost < best_cost || (cost == best_cost && reuse > best_reuse)) {
        best = static_cast<int32_t>(seq);
        best_reuse = reuse;
        best_cost = cost;
      }
    }
    --n_free_;
    Slot& slot = slots_[static_cast<size_t>(best)];
    const Status st = session_->truncate(best, static_cast<int64_t>(best_reuse));
    assert(st.ok() && "the reuse rule above follows Session::truncate's");
    (void)st;
    slot.cached.resize(best_reuse);
    slot.job = std::move(job);
    slot.n_read = best_reuse;
    slot.decoding = false;
    slot.job->ticket = ++tickets_;
    slot.job->gen->begin_prefill(static_cast<int64_t>(best_reuse));
  }
  stats_.active = static_cast<int>(slots_.size()) - n_free_;
  stats_.queued = queue_.size();
  return true;
}

void Scheduler::step() {
  // Cancelled jobs leave before the pass.
  for (size_t seq = 0; seq < slots_.size(); ++seq) {
    Slot& slot = slots_[seq];
    if (!slot.job) continue;
    const std::atomic<bool>* cancel = slot.job->gen->request().cancel;
    if (slot.job->abandoned.load() || (cancel != nullptr && cancel->load())) {
      if (!slot.decoding) slot.job->gen->end_prefill();
      slot.job->gen->cancel();
      finish(static_cast<int32_t>(seq));
    }
  }

  // One batch: the pending token of every decoding slot, then prompt chunks, oldest first.
  std::vector<runtime::SeqBatch> chunks;
  std::vector<int64_t> rows(slots_.size());  // each chunk asks for at most one row
  std::vector<int32_t> prefilling;
  for (size_t seq = 0; seq < slots_.size(); ++seq) {
    Slot& slot = slots_[seq];
    if (!slot.job) continue;
    if (!slot.decoding) {
      prefilling.push_back(static_cast<int32_t>(seq));
      continue;
    }
    rows[seq] = 0;
    chunks.push_back({static_cast<int32_t>(seq), std::span<const int32_t>(&slot.next, 1),
                      std::span<const int64_t>(&rows[seq], 1)});
  }
  std::sort(prefilling.begin(), prefilling.end(), [&](int32_t a, int32_t b) {
    return slots_[static_cast<size_t>(a)].job->ticket < slots_[static_cast<size_t>(b)].job->ticket;
  });
  size_t budget = kStepPromptTokens;
  for (int32_t seq : prefilling) {
    if (budget == 0) break;
    Slot& slot = slots_[static_cast<size_t>(seq)];
    const std::vector<int32_t>& prompt = slot.job->gen->request().prompt;
    const size_t n = std::min(budget, prompt.size() - slot.n_read);
    budget -= n;
    const bool last = slot.n_read + n == prompt.size();
    rows[static_cast<size_t>(seq)] = static_cast<int64_t>(n) - 1;
    chunks.push_back({seq, std::span<const int32_t>(prompt).subspan(slot.n_read, n),
                      last ? std::span<const int64_t>(&rows[static_cast<size_t>(seq)], 1)
                           : std::span<const int64_t>()});
  }
  if (chunks.empty()) return;

  if (Status st = session_->eval_batch(chunks, logits_.data()); !st.ok()) {
    // Nothing changed in the session; the requests of this batch fail.
    for (const runtime::SeqBatch& c : chunks) finish(c.seq, st);
    return;
  }
  int64_t n_tokens = 0;
  for (const runtime::SeqBatch& c : chunks) {
    n_tokens += static_cast<int64_t>(c.tokens.size());
    Slot& slot = slots_[static_cast<size_t>(c.seq)];
    slot.cached.insert(slot.cached.end(), c.tokens.begin(), c.tokens.end());
    if (!slot.decoding) slot.n_read += c.tokens.size();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.steps;
    stats_.batched_tokens += n_tokens;
  }

  // Sample every slot that got logits.
  const int64_t n_vocab = session_->n_vocab();
  int64_t row = 0;
  for (const runtime::SeqBatch& c : chunks) {
    if (c.logit_rows.empty()) continue;
    Slot& slot = slots_[static_cast<size_t>(c.seq)];
    const std::span<const float> logits(logits_.data() + row * n_vocab,
                                        static_cast<size_t>(n_vocab));
    ++row;
    if (!slot.decoding) {
      slot.job->gen->end_prefill();
      slot.decoding = true;
    }
    Expected<std::optional<int32_t>> token =
        slot.job->gen->next(logits, session_->n_past(c.seq), slot.job->sink());
    if (!token.has_value()) {
      finish(c.seq, token.status());
    } else if (!*token) {
      finish(c.seq);
    } else {
      slot.next = **token;
    }
  }
}

void Scheduler::finish(int32_t seq, const Status& error) {
  Slot& slot = slots_[static_cast<size_t>(seq)];
  std::shared_ptr<Job> job = std::move(slot.job);
  slot.decoding = false;
  Expected<GenerateResult> result =
      error.ok() ? job->gen->finish(job->sink()) : Expected<GenerateResult>(error);
  // The request belongs to the caller, who may return as soon as `done` is seen: nothing of
  // it is touched after, and the slot counts as free by then.
  job->gen.reset();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++n_free_;
    stats_.active = static_cast<int>(slots_.size()) - n_free_;
  }
  {
    std::lock_guard<std::mutex> lock(job->mutex);
    job->result = std::move(result);
    job->done = true;
  }
  job->ready.notify_all();
}

}  // namespace loupe::engine
