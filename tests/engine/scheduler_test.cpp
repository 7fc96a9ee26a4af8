// engine::Scheduler on stories260K (and the recurrent qwen35 for prefix reuse): one slot gives
// Generator's results; concurrent requests in four slots each give the single-sequence result
// while sharing forward passes; cancellation frees the slot; a full queue is kUnavailable;
// a follow-up turn reuses its slot's cache.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "common/testdata.h"
#include "engine/generator.h"
#include "engine/model.h"
#include "engine/scheduler.h"

namespace loupe::engine {
namespace {

const Model& load(const char* name) {
  static std::map<std::string, std::unique_ptr<Model>> models;
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<Model>& m = models[name];
  if (!m) {
    auto r = Model::load(testing::testdata_path(name));
    EXPECT_TRUE(r.has_value()) << r.status().message();
    m = std::move(*r);
  }
  return *m;
}
const Model& stories() {
  return load("models/stories260K.gguf");
}

std::unique_ptr<Scheduler> scheduler(const Model& m, int n_parallel, size_t max_queue = 64,
                                     int64_t n_ctx = 256) {
  SchedulerOptions opt;
  opt.n_parallel = n_parallel;
  opt.max_queue = max_queue;
  opt.run.n_threads = 2;
  opt.run.n_ctx = n_ctx;
  auto s = Scheduler::create(m, opt);
  EXPECT_TRUE(s.has_value()) << s.status().message();
  return std::move(*s);
}

Expected<GenerateResult> generate_alone(const Model& m, const GenerateRequest& req,
                                        int64_t n_ctx = 256) {
  runtime::RunParams p;
  p.n_threads = 2;
  p.n_ctx = n_ctx;
  auto g = Generator::create(m, p);
  EXPECT_TRUE(g.has_value()) << g.status().message();
  return (*g)->generate(req);
}

GenerateRequest request(const std::string& prompt, int32_t n_predict = 24) {
  GenerateRequest req;
  req.prompt = stories().tokenize_prompt(prompt, false);
  req.n_predict = n_predict;
  req.sampler.temp = 0.0f;
  req.sampler.seed = 7;
  return req;
}

void expect_same(const GenerateResult& a, const GenerateResult& b, const std::string& what) {
  EXPECT_EQ(a.tokens, b.tokens) << what;
  EXPECT_EQ(a.text, b.text) << what;
  EXPECT_EQ(a.stop_reason, b.stop_reason) << what;
  EXPECT_EQ(a.stop_string, b.stop_string) << what;
  EXPECT_EQ(a.seed, b.seed) << what;
  EXPECT_EQ(a.n_prompt, b.n_prompt) << what;
  ASSERT_EQ(a.logprobs.size(), b.logprobs.size()) << what;
  for (size_t i = 0; i < a.logprobs.size(); ++i) {
    EXPECT_EQ(std::memcmp(&a.logprobs[i].logprob, &b.logprobs[i].logprob, sizeof(double)), 0)
        << what << " token " << i;
    ASSERT_EQ(a.logprobs[i].top.size(), b.logprobs[i].top.size());
    for (size_t k = 0; k < a.logprobs[i].top.size(); ++k)
      EXPECT_EQ(a.logprobs[i].top[k].token, b.logprobs[i].top[k].token) << what;
  }
}

TEST(Scheduler, OneSlotGivesGeneratorsResults) {
  LOUPE_REQUIRE_TESTDATA();
  std::vector<std::pair<std::string, GenerateRequest>> cases;
  cases.emplace_back("greedy", request("Once upon a time", 40));
  GenerateRequest seeded = request("Once upon a time", 40);
  seeded.sampler.temp = 1.0f;
  seeded.sampler.seed = 99;
  seeded.n_logprobs = 5;
  cases.emplace_back("seeded", seeded);
  GenerateRequest hot = request("The dog", 32);
  hot.sampler = {};
  hot.sampler.seed = 1234;
  hot.sampler.penalty_repeat = 1.3f;
  hot.sampler.dry_multiplier = 0.8f;
  cases.emplace_back("default chain with penalties", hot);
  GenerateRequest stop = request("Once upon a time", 64);
  stop.stop = {"Lily"};
  cases.emplace_back("stop string", stop);
  GenerateRequest grammar = request("Once upon a time", 12);
  grammar.sampler = {};
  grammar.sampler.seed = 5;
  grammar.grammar = R"(root ::= "[" item ("," item)* "]"
item ::= [a-z ]+)";
  cases.emplace_back("grammar", grammar);
  GenerateRequest eog = request("Once upon a time", 8);
  eog.sampler.logit_bias = {{stories().tokenizer().eos(), 100.0f}};
  cases.emplace_back("eog", eog);

  auto s = scheduler(stories(), 1);
  for (const auto& [what, req] : cases) {
    auto want = generate_alone(stories(), req);
    ASSERT_TRUE(want.has_value()) << what << ": " << want.status().message();
    std::string streamed;
    int64_t tokens = 0;
    auto got = s->generate(req, [&](const TokenEvent& ev) {
      streamed += ev.text;
      if (ev.token >= 0) {
        EXPECT_EQ(ev.index, tokens);
        EXPECT_EQ(ev.logprobs != nullptr, req.n_logprobs >= 0);
        ++tokens;
      }
      return true;
    });
    ASSERT_TRUE(got.has_value()) << what << ": " << got.status().message();
    expect_same(*got, *want, what);
    EXPECT_EQ(streamed, got->text) << what;
    EXPECT_EQ(tokens, static_cast<int64_t>(got->tokens.size())) << what;
    EXPECT_EQ(got->timings.predicted_n, static_cast<int64_t>(got->tokens.size())) << what;
  }
  // The request errors are Generator's, checked before queueing.
  GenerateRequest empty = request("x");
  empty.prompt.clear();
  EXPECT_EQ(s->generate(empty).status().code(), ErrorCode::kInvalidArgument);
  GenerateRequest too_long = request("x");
  too_long.prompt.assign(300, 400);
  auto r = s->generate(too_long);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), ErrorCode::kOutOfRange);
  EXPECT_NE(r.status().message().find("300"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("256"), std::string::npos) << r.status().message();
  GenerateRequest bad_grammar = request("x");
  bad_grammar.grammar = "root ::= (";
  EXPECT_FALSE(s->generate(bad_grammar).has_value());
  EXPECT_EQ(s->n_parallel(), 1);
  EXPECT_EQ(s->n_ctx(), 256);
  SchedulerOptions none;
  none.n_parallel = 0;
  EXPECT_FALSE(Scheduler::create(stories(), none).has_value());
}

// Eight greedy requests from eight threads in four slots, while a ninth request holds a slot
// and decodes through all of it: every result is the single-sequence one, and the long
// request's token shares every step the others take.
TEST(Scheduler, ConcurrentRequestsGiveSingleSequenceResultsAndShareSteps) {
  LOUPE_REQUIRE_TESTDATA();
  const std::vector<std::string> prompts = {"Once upon a time",
                                            "The cat sat",
                                            "Lily and Ben went to the park",
                                            "One day",
                                            "Tom had a big red ball",
                                            "The sun was shining",
                                            "A little bird",
                                            "Mom said"};
  std::vector<GenerateResult> want;
  for (const std::string& p : prompts) {
    auto r = generate_alone(stories(), request(p));
    ASSERT_TRUE(r.has_value());
    want.push_back(std::move(*r));
  }

  auto s = scheduler(stories(), 4, 64, 512);
  std::mutex mutex;
  std::condition_variable cv;
  bool long_started = false;
  std::atomic<bool> others_done{false};
  std::optional<Expected<GenerateResult>> long_result;
  std::thread long_thread([&] {
    GenerateRequest req = request("Once upon a time", -1);
    req.sampler.ignore_eos = true;
    long_result = s->generate(req, [&](const TokenEvent&) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        long_started = true;
      }
      cv.notify_all();
      return !others_done.load();
    });
  });
  {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [&] { return long_started; });
  }
  std::vector<std::optional<Expected<GenerateResult>>> got(prompts.size());
  std::vector<std::string> streamed(prompts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i)
    threads.emplace_back([&, i] {
      got[i] = s->generate(request(prompts[i]), [&, i](const TokenEvent& ev) {
        streamed[i] += ev.text;
        return true;
      });
    });
  for (std::thread& t : threads) t.join();
  others_done = true;
  long_thread.join();

  int64_t others_tokens = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_TRUE(got[i]->has_value()) << prompts[i] << ": " << got[i]->status().message();
    const GenerateResult& r = **got[i];
    EXPECT_EQ(r.tokens, want[i].tokens) << prompts[i];
    EXPECT_EQ(r.text, want[i].text) << prompts[i];
    EXPECT_EQ(r.stop_reason, want[i].stop_reason) << prompts[i];
    EXPECT_EQ(streamed[i], r.text) << prompts[i];
    others_tokens += r.timings.prompt_n + static_cast<int64_t>(r.tokens.size()) - 1;
  }
  ASSERT_TRUE(long_result->has_value()) << long_result->status().message();
  const Scheduler::Stats stats = s->stats();
  EXPECT_EQ(stats.active, 0);
  EXPECT_EQ(stats.queued, 0u);
  EXPECT_GT(stats.batched_tokens, stats.steps);
  // Unless the long request filled its context first (a very slow machine), it decoded in
  // every step the others took, each of which held its token beside theirs.
  if ((*long_result)->stop_reason == StopReason::kCancelled)
    EXPECT_GE(stats.batched_tokens, stats.steps + others_tokens)
        << stats.steps << " steps, " << stats.batched_tokens << " tokens";
  else
    EXPECT_EQ((*long_result)->stop_reason, StopReason::kContext);
}

TEST(Scheduler, CancellingFreesTheSlot) {
  LOUPE_REQUIRE_TESTDATA();
  auto s = scheduler(stories(), 1);
  GenerateRequest endless = request("Once upon a time", -1);
  endless.sampler.ignore_eos = true;
  // The callback refuses the third token: the result holds exactly what was streamed.
  int n = 0;
  std::string streamed;
  auto r = s->generate(endless, [&](const TokenEvent& ev) {
    streamed += ev.text;
    return ev.token < 0 || ++n < 3;
  });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->stop_reason, StopReason::kCancelled);
  EXPECT_EQ(r->tokens.size(), 3u);
  EXPECT_EQ(r->text, streamed);
  EXPECT_EQ(n, 3);  // nothing delivered after the refusal
  // The cancel flag, raised from outside while it runs.
  std::atomic<bool> cancel{false};
  endless.cancel = &cancel;
  r = s->generate(endless, [&](const TokenEvent& ev) {
    if (ev.index == 4) cancel = true;
    return true;
  });
  ASSERT_TRUE(r.has_value());
  EXPECT_GE(r->tokens.size(), 5u);
  // The worker runs ahead of the events this thread reads: on a very slow machine it may fill
  // the context before the flag is seen.
  if (r->stop_reason != StopReason::kContext) {
    EXPECT_EQ(r->stop_reason, StopReason::kCancelled);
  }
  // Raised before it starts: nothing is generated.
  r = s->generate(endless);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->stop_reason, StopReason::kCancelled);
  EXPECT_TRUE(r->tokens.empty());
  // The slot is free again.
  auto after = s->generate(request("Once upon a time"));
  ASSERT_TRUE(after.has_value());
  auto want = generate_alone(stories(), request("Once upon a time"));
  EXPECT_EQ(after->tokens, want->tokens);
  EXPECT_EQ(s->stats().active, 0);
}

TEST(Scheduler, AFullQueueIsUnavailable) {
  LOUPE_REQUIRE_TESTDATA();
  // One slot held by an endless request, one request waiting: a third does not fit. The
  // endless one can only run n_ctx steps, so on a machine too slow to queue the others in
  // that time, try again.
  bool checked = false;
  for (int attempt = 0; attempt < 5 && !checked; ++attempt) {
    auto s = scheduler(stories(), 1, 1, 512);
    std::atomic<bool> release{false}, started{false};
    std::optional<Expected<GenerateResult>> holder, waiter;
    std::thread hold([&] {
      GenerateRequest req = request("Once upon a time", -1);
      req.sampler.ignore_eos = true;
      holder = s->generate(req, [&](const TokenEvent&) {
        started = true;
        return !release.load();
      });
    });
    while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::thread wait([&] { waiter = s->generate(request("The cat sat")); });
    while (s->stats().queued == 0 && s->stats().active == 1)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    auto third = s->generate(request("One day"));
    const Scheduler::Stats stats = s->stats();
    release = true;
    hold.join();
    wait.join();
    ASSERT_TRUE(holder->has_value());
    ASSERT_TRUE(waiter->has_value()) << waiter->status().message();
    if ((*holder)->stop_reason != StopReason::kCancelled) continue;  // it ended on its own
    checked = true;
    ASSERT_FALSE(third.has_value());
    EXPECT_EQ(third.status().code(), ErrorCode::kUnavailable);
    EXPECT_STREQ(error_code_name(third.status().code()), "unavailable");
    EXPECT_NE(third.status().message().find("try again"), std::string::npos)
        << third.status().message();
    EXPECT_EQ(stats.queued, 1u);
    EXPECT_EQ((*waiter)->tokens.size(), 24u);
  }
  EXPECT_TRUE(checked) << "the holding request never outlived the queueing";
}

TEST(Scheduler, DestroyingItCancelsWhatIsRunningAndQueued) {
  LOUPE_REQUIRE_TESTDATA();
  auto s = scheduler(stories(), 1, 4, 512);
  GenerateRequest endless = request("Once upon a time", -1);
  endless.sampler.ignore_eos = true;
  std::atomic<bool> started{false}, b_done{false};
  std::optional<Expected<GenerateResult>> running, queued;
  std::thread a([&] {
    running = s->generate(endless, [&](const TokenEvent&) {
      started = true;
      return true;
    });
  });
  while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::thread b([&] {
    queued = s->generate(endless);
    b_done = true;
  });
  while (s->stats().queued == 0 && !b_done)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  s.reset();
  a.join();
  b.join();
  ASSERT_TRUE(running->has_value());
  ASSERT_TRUE(queued->has_value());
  // Each either was cancelled or (a very slow machine) filled its context first.
  for (const GenerateResult* r : {&**running, &**queued})
    EXPECT_TRUE(r->stop_reason == StopReason::kCancelled || r->stop_reason == StopReason::kContext)
        << stop_reason_name(r->stop_reason);
}

TEST(Scheduler, AFollowUpTurnReusesItsSlotsCache) {
  LOUPE_REQUIRE_TESTDATA();
  for (const char* name : {"models/stories260K.gguf", "models2026/qwen35-tok512.Q8_0.gguf"}) {
    const Model& m = load(name);
    auto s = scheduler(m, 2);
    GenerateRequest first;
    first.prompt = m.tokenize_prompt("Once upon a time", false);
    first.n_predict = 10;
    first.sampler.temp = 0.0f;
    first.sampler.ignore_eos = true;
    auto a = s->generate(first);
    ASSERT_TRUE(a.has_value()) << name << ": " << a.status().message();
    // Another conversation in the other slot meanwhile.
    GenerateRequest other = first;
    other.prompt = m.tokenize_prompt("The dog barked", false);
    ASSERT_TRUE(s->generate(other).has_value());
    // The next turn: the first prompt, its answer and more text.
    GenerateRequest next = first;
    next.prompt.insert(next.prompt.end(), a->tokens.begin(), a->tokens.end());
    for (int32_t t : m.tokenizer().tokenize(" The end. Once", false, false))
      next.prompt.push_back(t);
    auto b = s->generate(next);
    ASSERT_TRUE(b.has_value()) << name;
    // All but the last answer token (sampled, never evaluated) are in the cache.
    const int64_t cached = static_cast<int64_t>(first.prompt.size() + a->tokens.size()) - 1;
    EXPECT_EQ(b->timings.cache_n, cached) << name;
    EXPECT_EQ(b->timings.prompt_n, static_cast<int64_t>(next.prompt.size()) - cached) << name;
    auto fresh = generate_alone(m, next);
    ASSERT_TRUE(fresh.has_value());
    EXPECT_EQ(b->tokens, fresh->tokens) << name;
    // A prompt that leaves the conversation part way: attention caches rewind to the common
    // prefix; a recurrent state cannot, so that prompt is read from the start.
    GenerateRequest diverging = first;
    diverging.prompt = m.tokenize_prompt("Once upon a time, there was a dog", false);
    size_t common = 0;
    while (common < next.prompt.size() && common < diverging.prompt.size() &&
           next.prompt[common] == diverging.prompt[common])
      ++common;
    ASSERT_GT(common, 1u);
    auto c = s->generate(diverging);
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->timings.cache_n, m.has_recurrent_layers() ? 0 : static_cast<int64_t>(common))
        << name;
    auto c_fresh = generate_alone(m, diverging);
    ASSERT_TRUE(c_fresh.has_value());
    EXPECT_EQ(c->tokens, c_fresh->tokens) << name;
  }
}

}  // namespace
}  // namespace loupe::engine
