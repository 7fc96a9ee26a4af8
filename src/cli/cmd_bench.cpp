// `loupe bench`: llama-bench's figures for our engine. Prompt processing `ppN` is one batch
// of N tokens from an empty cache; generation `tgN` is N single-token steps from an empty
// cache. Each test runs once to warm up, then -r times; t/s is the mean ± sample stddev
// over the repetitions of tokens / seconds, exactly as llama-bench reports it. Times cover
// the forward passes only (no tokenization, no sampling). With -o json / --json stdout
// carries only the JSON array, with llama-bench's field names, and logs go to stderr.
#include <algorithm>
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "format.h"
#include "model/arch.h"
#include "model/quant_plan.h"
#include "model_args.h"
#include "runtime/session.h"
#include "simd/cpu.h"

namespace loupe::cli {
namespace {

struct BenchOptions {
  std::vector<std::string> models;
  std::vector<int> n_prompt = {512};
  std::vector<int> n_gen = {128};
  std::vector<int> threads;
  int repetitions = 5;
  std::string output = "md";
  bool json = false;
  bool no_warmup = false;
  std::string cache_type_k = "f16";
  std::string cache_type_v = "f16";
};

// llama_model_ftype_name's spelling of general.file_type.
std::string ftype_label(const model::Model& m) {
  const int64_t id = m.file->get_int_or("general.file_type", -1);
  switch (id) {
    case 0: return "all F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K - Medium";
    case 11: return "Q3_K - Small";
    case 12: return "Q3_K - Medium";
    case 13: return "Q3_K - Large";
    case 14: return "Q4_K - Small";
    case 15: return "Q4_K - Medium";
    case 16: return "Q5_K - Small";
    case 17: return "Q5_K - Medium";
    case 18: return "Q6_K";
    case 25: return "IQ4_NL - 4.5 bpw";
    case 30: return "IQ4_XS - 4.25 bpw";
    case 32: return "BF16";
    case 38: return "MXFP4 MoE";
    default: return "unknown";
  }
}

std::string size_label(int64_t n_params) {
  const double n = static_cast<double>(n_params);
  if (n >= 1e9) return fmt::format("{:.0f}B", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.0f}M", n / 1e6);
  return fmt::format("{:.0f}K", n / 1e3);
}

uint64_t tensor_bytes(const model::Model& m) {
  uint64_t total = 0;
  for (const auto& t : m.file->tensors()) total += t.n_bytes;
  return total;
}

// What one token's forward pass touches: weight bytes read and parameters used. Everything for
// a dense model; for a mixture of experts, the expert tensors (names with "_exps") only in the
// share n_expert_used / n_expert.
struct ActiveShare {
  uint64_t bytes = 0;
  uint64_t params = 0;
};
ActiveShare active_share(const model::Model& m) {
  ActiveShare dense, experts;
  for (const auto& t : m.file->tensors()) {
    ActiveShare& s = t.name.find("_exps") != std::string::npos ? experts : dense;
    uint64_t n = 1;
    for (int64_t d : t.ne) n *= static_cast<uint64_t>(d);
    s.bytes += t.n_bytes;
    s.params += n;
  }
  if (m.hp.n_expert <= 0 || experts.bytes == 0)
    return {dense.bytes + experts.bytes, dense.params + experts.params};
  const auto share = [&](uint64_t v) {
    return v * static_cast<uint64_t>(m.hp.n_expert_used) / static_cast<uint64_t>(m.hp.n_expert);
  };
  return {dense.bytes + share(experts.bytes), dense.params + share(experts.params)};
}

struct TestResult {
  int n_prompt = 0;
  int n_gen = 0;
  int threads = 0;
  std::vector<uint64_t> samples_ns;
  std::string time;
};

double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}
double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

std::vector<double> rates(const TestResult& r) {
  const int n = r.n_prompt + r.n_gen;
  std::vector<double> ts;
  for (uint64_t ns : r.samples_ns) ts.push_back(1e9 * n / static_cast<double>(ns));
  return ts;
}

std::string now_iso8601() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::vector<int32_t> bench_tokens(int64_t n, int64_t n_vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  uint64_t s = 0x9e3779b97f4a7c15ull;
  for (int32_t& v : t) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<int32_t>((s >> 33) % static_cast<uint64_t>(n_vocab));
  }
  return t;
}

// One run of a test on a fresh (reset) session; returns nanoseconds.
Expected<uint64_t> run_once(runtime::Session& s, int n_prompt, int n_gen, std::vector<float>& logits) {
  s.reset();
  const int64_t n_vocab = s.n_vocab();
  logits.resize(static_cast<size_t>(n_vocab));
  const auto t0 = std::chrono::steady_clock::now();
  if (n_prompt > 0) {
    const auto tokens = bench_tokens(n_prompt, n_vocab);
    const int64_t last = n_prompt - 1;
    LOUPE_TRY(s.eval(tokens, std::span<const int64_t>(&last, 1), logits.data()));
  }
  if (n_gen > 0) {
    const auto tokens = bench_tokens(n_gen, n_vocab);
    const int64_t row = 0;
    for (int i = 0; i < n_gen; ++i)
      LOUPE_TRY(s.eval(std::span<const int32_t>(&tokens[static_cast<size_t>(i)], 1),
                                   std::span<const int64_t>(&row, 1), logits.data()));
  }
  const auto t1 = std::chrono::steady_clock::now();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
}

// The process's peak resident set so far (mapped weights that were touched count).
uint64_t peak_rss_bytes() {
  rusage ru = {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024u;  // Linux reports KiB
}

nlohmann::json to_json(const BenchOptions& opt, const std::string& path, const model::Model& m,
                       const TestResult& r, double load_ms) {
  const std::vector<double> ts = rates(r);
  std::vector<double> ns(r.samples_ns.begin(), r.samples_ns.end());
  nlohmann::json j;
  j["build_commit"] = "loupe";
  j["build_number"] = 0;
  j["cpu_info"] = simd::cpu_brand();
  j["gpu_info"] = "";
  j["backends"] = "CPU";
  j["model_filename"] = path;
  j["model_type"] = fmt::format("{} {} {}", m.hp.arch, size_label(m.hp.n_params), ftype_label(m));
  j["model_size"] = tensor_bytes(m);
  j["model_n_params"] = m.hp.n_params;
  j["n_batch"] = 2048;
  j["n_ubatch"] = 512;
  j["n_threads"] = r.threads;
  j["cpu_mask"] = "0x0";
  j["cpu_strict"] = false;
  j["poll"] = 50;
  j["type_k"] = opt.cache_type_k;
  j["type_v"] = opt.cache_type_v;
  j["n_gpu_layers"] = 0;
  j["split_mode"] = "layer";
  j["main_gpu"] = 0;
  j["no_kv_offload"] = false;
  j["flash_attn"] = false;
  j["tensor_split"] = "0.00";
  j["use_mmap"] = true;
  j["embeddings"] = false;
  j["n_prompt"] = r.n_prompt;
  j["n_gen"] = r.n_gen;
  j["n_depth"] = 0;
  j["test_time"] = r.time;
  j["avg_ns"] = static_cast<uint64_t>(mean(ns));
  j["stddev_ns"] = static_cast<uint64_t>(stddev(ns));
  j["avg_ts"] = mean(ts);
  j["stddev_ts"] = stddev(ts);
  j["samples_ns"] = r.samples_ns;
  j["samples_ts"] = ts;
  // Ours, beyond llama-bench's fields.
  j["cpu_features"] = simd::feature_string();
  j["isa"] = std::string(simd::isa_name(simd::active_isa()));
  j["load_ms"] = load_ms;
  j["repacked_bytes"] = m.packed.bytes();
  const ActiveShare active = active_share(m);
  j["active_bytes_per_token"] = active.bytes;
  j["active_params_per_token"] = active.params;
  j["peak_rss_bytes"] = peak_rss_bytes();
  return j;
}

std::string human_size(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
  return fmt::format("{:.2f} MiB", b / (1024.0 * 1024));
}
std::string human_params(int64_t n) {
  const double v = static_cast<double>(n);
  if (v >= 1e9) return fmt::format("{:.2f} B", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.2f} M", v / 1e6);
  return fmt::format("{:.2f} K", v / 1e3);
}

int run_bench(const BenchOptions& opt) {
  std::string output = opt.json ? "json" : opt.output;
  if (output != "md" && output != "json" && output != "jsonl")
    return report(make_error(ErrorCode::kInvalidArgument, "-o {}: use md, json or jsonl", output));
  if (opt.repetitions < 1)
    return report(make_error(ErrorCode::kInvalidArgument, "-r {}: need at least 1 repetition",
                             opt.repetitions));
  auto ck = parse_cache_type(opt.cache_type_k, "--cache-type-k");
  if (!ck) return report(ck.status());
  auto cv = parse_cache_type(opt.cache_type_v, "--cache-type-v");
  if (!cv) return report(cv.status());
  std::vector<int> threads = opt.threads;
  if (threads.empty()) threads.push_back(ThreadPool::default_threads());

  nlohmann::json all = nlohmann::json::array();
  bool header_printed = false;
  for (const std::string& path : opt.models) {
    const auto l0 = std::chrono::steady_clock::now();
    auto model = model::load_model(path);
    if (!model) return report(model.status());
    const double load_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - l0).count();
    const model::Model& m = **model;
    std::fprintf(stderr, "loupe bench: %s loaded in %.0f ms, %.1f MiB repacked (isa %s; %s)\n",
                 path.c_str(), load_ms, static_cast<double>(m.packed.bytes()) / (1 << 20),
                 std::string(simd::isa_name(simd::active_isa())).c_str(),
                 simd::feature_string().c_str());
    std::vector<std::pair<int, int>> tests;
    for (int p : opt.n_prompt)
      if (p > 0) tests.emplace_back(p, 0);
    for (int n : opt.n_gen)
      if (n > 0) tests.emplace_back(0, n);
    for (int t : threads) {
      runtime::RunParams params;
      params.n_threads = t;
      params.cache_type_k = *ck;
      params.cache_type_v = *cv;
      int64_t need = 1;
      for (auto [p, n] : tests) need = std::max<int64_t>(need, p + n);
      params.n_ctx = need;
      auto session = runtime::Session::create(m, params);
      if (!session) return report(session.status());
      std::vector<float> logits;
      for (auto [p, n] : tests) {
        TestResult r;
        r.n_prompt = p;
        r.n_gen = n;
        r.threads = t;
        r.time = now_iso8601();
        if (!opt.no_warmup) {
          auto w = run_once(**session, p, n, logits);
          if (!w) return report(w.status());
        }
        for (int rep = 0; rep < opt.repetitions; ++rep) {
          auto ns = run_once(**session, p, n, logits);
          if (!ns) return report(ns.status());
          r.samples_ns.push_back(*ns);
        }
        nlohmann::json j = to_json(opt, path, m, r, load_ms);
        if (output == "jsonl") {
          std::printf("%s\n", j.dump().c_str());
          std::fflush(stdout);
        } else if (output == "md") {
          if (!header_printed) {
            std::printf("CPU: %s | features: %s | isa: %s\n\n", simd::cpu_brand().c_str(),
                        simd::feature_string().c_str(),
                        std::string(simd::isa_name(simd::active_isa())).c_str());
            std::printf("| %-30s | %10s | %10s | %-7s | %7s | %13s | %20s |\n", "model", "size",
                        "params", "backend", "threads", "test", "t/s");
            std::printf("| %s | %s: | %s: | %s | %s: | %s: | %s: |\n", std::string(30, '-').c_str(),
                        std::string(9, '-').c_str(), std::string(9, '-').c_str(),
                        std::string(7, '-').c_str(), std::string(6, '-').c_str(),
                        std::string(12, '-').c_str(), std::string(19, '-').c_str());
            header_printed = true;
          }
          const std::string test = p > 0 ? fmt::format("pp{}", p) : fmt::format("tg{}", n);
          std::printf("| %-30s | %10s | %10s | %-7s | %7d | %13s | %20s |\n",
                      j["model_type"].get<std::string>().c_str(), human_size(tensor_bytes(m)).c_str(),
                      human_params(m.hp.n_params).c_str(), "CPU", t, test.c_str(),
                      fmt::format("{:.2f} ± {:.2f}", j["avg_ts"].get<double>(),
                                  j["stddev_ts"].get<double>())
                          .c_str());
          std::fflush(stdout);
        }
        all.push_back(std::move(j));
      }
    }
  }
  if (output == "json") std::printf("%s\n", all.dump(2).c_str());
  std::fprintf(stderr, "loupe bench: peak resident memory %.1f MiB\n",
               static_cast<double>(peak_rss_bytes()) / (1024.0 * 1024.0));
  return kExitOk;
}

}  // namespace

void add_bench(CLI::App& app) {
  auto opt = std::make_shared<BenchOptions>();
  CLI::App* c = app.add_subcommand(
      "bench", "Measure prompt processing (ppN) and generation (tgN) speed, llama-bench style");
  c->add_option("-m,--model", opt->models, "GGUF model (repeatable)")->required();
  c->add_option("-p,--n-prompt", opt->n_prompt, "Prompt lengths (comma-separated; 0 skips)")
      ->delimiter(',');
  c->add_option("-n,--n-gen", opt->n_gen, "Generation lengths (comma-separated; 0 skips)")
      ->delimiter(',');
  c->add_option("-t,--threads", opt->threads, "Thread counts (comma-separated; default: all cores)")
      ->delimiter(',');
  c->add_option("-r,--repetitions", opt->repetitions, "Repetitions of each test (default 5)");
  c->add_option("-o,--output", opt->output, "md (default), json or jsonl");
  c->add_flag("--json", opt->json, "Same as -o json: only the JSON array on stdout");
  c->add_flag("--no-warmup", opt->no_warmup, "Skip the warm-up run of each test");
  c->add_option("--cache-type-k", opt->cache_type_k, "KV cache type for K: f16 (default), f32, q8_0");
  c->add_option("--cache-type-v", opt->cache_type_v, "KV cache type for V: f16 (default), f32, q8_0");
  c->callback([opt] { exit_status() = run_bench(*opt); });
}

}  // namespace loupe::cli
