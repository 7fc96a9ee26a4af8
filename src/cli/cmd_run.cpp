// `loupe run`: one generation from a prompt, streamed.
//
//   loupe run -m MODEL (-p TEXT | --tokens IDS) [--system TEXT] [--raw] [-n N] [-c N]
//             [sampler flags as llama.cpp names them] [--grammar ... | -j SCHEMA ...]
//             [--stop STR]... [--ignore-eos] [-t N] [--logprobs K [--show-alternatives]]
//             [--show-prompt] [--json]
//
// -p goes through the model's chat template (as one user turn, after --system) unless --raw
// or the model has none (then the raw text is completed and stderr says so); --tokens is used
// verbatim (no BOS, no template). stdout gets the generated text only (or, with --json, one
// object: tokens, text, finish_reason, seed, settings, logprobs in OpenAI's shape, timings);
// the stats line goes to stderr. Every JSON key but `timings` is the same for any -t.
// Exit status: 0 done (also when stopped by -n, a stop string or end-of-generation), 1 bad
// input or a grammar that cannot be completed within -n, 2 bad command line, 130 Ctrl-C.
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "engine/generator.h"
#include "engine/model.h"
#include "engine/prompt.h"
#include "gen_view.h"
#include "model_args.h"
#include "sampler_args.h"

namespace loupe::cli {
namespace {

constexpr int kExitInterrupted = 130;

struct RunOptions {
  std::string model;
  std::optional<std::string> prompt;
  std::optional<std::string> tokens;
  std::optional<std::string> system;
  int32_t n_predict = 64;
  int64_t n_ctx = 0;
  bool raw = false;
  bool json = false;
  bool show_prompt = false;
  bool show_alternatives = false;
  int32_t n_logprobs = -1;
  std::vector<std::string> stop;
  int threads = 0;
  std::string cache_type_k = "f16";
  std::string cache_type_v = "f16";
  SamplerArgs sampler;
};

std::atomic<bool> g_interrupted{false};

void on_sigint(int) {
  g_interrupted.store(true);
}

struct Prompt {
  std::vector<int32_t> tokens;
  std::string text;  // what was tokenized (empty for --tokens)
  bool templated = false;
};

Expected<Prompt> build_prompt(const RunOptions& opt, const engine::Model& model) {
  Prompt p;
  if (opt.tokens) {
    LOUPE_ASSIGN_OR_RETURN(p.tokens, parse_token_list(*opt.tokens));
    p.text = model.tokenizer().detokenize(p.tokens, false, true);
    return p;
  }
  if (opt.raw || !model.has_chat_template()) {
    if (!opt.raw)
      std::fprintf(stderr, "loupe: the model has no chat template: completing the raw text\n");
    if (opt.system) std::fprintf(stderr, "loupe: --system is ignored without a chat template\n");
    p.text = *opt.prompt;
    p.tokens = model.tokenize_prompt(p.text, /*parse_special=*/false);
    return p;
  }
  std::vector<engine::Message> messages;
  if (opt.system) messages.push_back({"system", *opt.system});
  messages.push_back({"user", *opt.prompt});
  LOUPE_ASSIGN_OR_RETURN(p.text, engine::render_chat(model, *engine::chat_format(model, false),
                                                     messages, /*add_generation_prompt=*/true));
  p.tokens = model.tokenize_prompt(p.text, /*parse_special=*/true);
  p.templated = true;
  return p;
}

int run_run(const RunOptions& opt) {
  if (opt.prompt.has_value() == opt.tokens.has_value()) {
    std::fprintf(stderr, "loupe run: give exactly one of -p TEXT or --tokens IDS\n");
    return kExitUsage;
  }
  if (opt.tokens && opt.system) {
    std::fprintf(stderr, "loupe run: --system needs -p (--tokens is used verbatim)\n");
    return kExitUsage;
  }
  if (opt.n_predict < -1)
    return report(make_error(ErrorCode::kInvalidArgument, "-n must be >= -1"));
  if (opt.n_logprobs > 20 || opt.n_logprobs < -1)
    return report(make_error(ErrorCode::kInvalidArgument,
                             "--logprobs {}: use 0 to 20 alternatives (OpenAI's range)",
                             opt.n_logprobs));
  auto sampler = resolve_sampler(opt.sampler);
  if (!sampler) return report(sampler.status());
  auto grammar = resolve_grammar(opt.sampler);
  if (!grammar) return report(grammar.status());

  auto model = engine::Model::load(opt.model);
  if (!model) return report(model.status());
  const tokenizer::Tokenizer& tok = (*model)->tokenizer();
  auto prompt = build_prompt(opt, **model);
  if (!prompt) return report(prompt.status());

  auto params = make_run_params(opt.threads, opt.n_ctx, opt.cache_type_k, opt.cache_type_v);
  if (!params) return report(params.status());
  auto gen = engine::Generator::create(**model, *params);
  if (!gen) return report(gen.status());

  const bool color = !opt.json && stdout_color();
  if (opt.show_prompt && !opt.json) {
    std::printf("--- prompt: %zu tokens%s ---\n%s", prompt->tokens.size(),
                prompt->templated ? " (chat template applied)" : "", prompt->text.c_str());
    if (prompt->text.empty() || prompt->text.back() != '\n') std::printf("\n");
    std::printf("--- output ---\n");
    std::fflush(stdout);
  }

  engine::GenerateRequest req;
  req.prompt = prompt->tokens;
  req.n_predict = opt.n_predict;
  req.sampler = *sampler;
  req.grammar = *grammar;
  req.stop = opt.stop;
  req.n_logprobs = opt.show_alternatives && opt.n_logprobs < 0 ? 5 : opt.n_logprobs;
  req.cancel = &g_interrupted;
  if (color && req.n_logprobs >= 0) std::fprintf(stderr, "%s\n", color_legend().c_str());

  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_sa = {};
  sigaction(SIGINT, &sa, &old_sa);

  std::string alternatives;  // --show-alternatives: one line per token, after the text
  auto result = (*gen)->generate(req, [&](const engine::TokenEvent& ev) {
    if (opt.json) return true;
    if (opt.show_alternatives) {
      if (ev.logprobs != nullptr) {
        std::string line = alternatives_line(tok, *ev.logprobs, color);
        std::printf("%s\n", line.c_str());
      }
      return true;
    }
    const double p = ev.logprobs != nullptr ? std::exp(ev.logprobs->logprob) : 1.0;
    const std::string shown = colored(ev.text, p, color && ev.logprobs != nullptr);
    std::fwrite(shown.data(), 1, shown.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  sigaction(SIGINT, &old_sa, nullptr);
  if (!result) {
    if (!opt.json) std::printf("\n");
    return report(result.status());
  }

  if (opt.json) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    j["tokens"] = result->tokens;
    j["text"] = result->text;
    j["finish_reason"] = engine::finish_reason(result->stop_reason);
    j["stop_reason"] = engine::stop_reason_name(result->stop_reason);
    if (!result->stop_string.empty()) j["stop_string"] = result->stop_string;
    j["seed"] = result->seed;
    j["n_prompt_tokens"] = result->n_prompt;
    if (opt.show_prompt) {
      j["prompt"] = prompt->text;
      j["prompt_tokens"] = prompt->tokens;
    }
    nlohmann::ordered_json settings = sampler_params_to_json(req.sampler);
    settings["seed"] = result->seed;
    settings["n_predict"] = req.n_predict;
    settings["n_ctx"] = (*gen)->n_ctx();
    settings["stop"] = req.stop;
    if (!req.grammar.empty()) settings["grammar"] = req.grammar;
    j["settings"] = std::move(settings);
    if (req.n_logprobs >= 0) {
      nlohmann::ordered_json content = nlohmann::ordered_json::array();
      auto piece = [&](int32_t id) { return tok.token_to_piece(id, /*special=*/true); };
      for (const auto& lp : result->logprobs)
        content.push_back(nlohmann::ordered_json(sample::logprobs_to_json(lp, piece)));
      j["logprobs"] = {{"content", std::move(content)}};
    }
    nlohmann::ordered_json timings = result->timings.to_json();
    timings["n_threads"] = params->n_threads > 0 ? params->n_threads : ThreadPool::default_threads();
    j["timings"] = std::move(timings);
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else if (opt.show_alternatives) {
    std::printf("--- text ---\n%s\n", result->text.c_str());
  } else {
    std::printf("\n");
  }
  std::fflush(stdout);
  if (result->stop_reason == engine::StopReason::kContext)
    std::fprintf(stderr, "loupe: stopped: the context is full (%lld tokens); raise it with -c\n",
                 static_cast<long long>((*gen)->n_ctx()));
  std::fprintf(stderr, "loupe: %s\n", stats_line(*result).c_str());
  return result->stop_reason == engine::StopReason::kCancelled && g_interrupted.load()
             ? kExitInterrupted
             : kExitOk;
}

}  // namespace

void add_run(CLI::App& app) {
  auto opt = std::make_shared<RunOptions>();
  CLI::App* c = app.add_subcommand("run", "Generate a continuation of a prompt, streamed");
  c->add_option("-m,--model", opt->model, "GGUF model")->required();
  auto* p = c->add_option("-p,--prompt", opt->prompt,
                          "Prompt text: a user turn through the chat template (raw with --raw)");
  auto* t =
      c->add_option("--tokens", opt->tokens,
                    "Prompt as comma-separated token ids, used verbatim (no BOS, no template)");
  p->excludes(t);
  t->excludes(p);
  c->add_option("--system", opt->system, "System prompt (with a chat template)");
  c->add_flag("--raw", opt->raw, "Complete the raw text, no chat template");
  c->add_option("-n,--n-predict,--predict", opt->n_predict,
                "Tokens to generate at most, -1 until the context is full")
      ->capture_default_str();
  c->add_option("-c,--ctx-size", opt->n_ctx,
                "Context size in tokens, 0 = min(training context, 4096)")
      ->capture_default_str();
  c->add_option("--stop", opt->stop, "Stop when this text appears (repeatable; not printed)")
      ->allow_extra_args(false);
  c->add_option("-t,--threads", opt->threads, "Threads (default: all cores)");
  c->add_option("--logprobs", opt->n_logprobs,
                "Log-probabilities with K alternatives per token (0-20): colours the text on a "
                "terminal, adds OpenAI's logprobs to --json");
  c->add_flag("--show-alternatives", opt->show_alternatives,
              "One line per token: its probability, entropy and the top alternatives "
              "(K from --logprobs, default 5)");
  c->add_flag("--show-prompt", opt->show_prompt,
              "Print the exact prompt (rendered template) and its token count first");
  c->add_flag("--json", opt->json,
              "Print one JSON object: tokens, text, finish_reason, seed, settings, logprobs, "
              "timings");
  c->add_option("--cache-type-k", opt->cache_type_k,
                "KV cache type for K: f16 (default), f32, q8_0");
  c->add_option("--cache-type-v", opt->cache_type_v,
                "KV cache type for V: f16 (default), f32, q8_0");
  add_sampler_options(c, opt->sampler);
  c->callback([opt] { exit_status() = run_run(*opt); });
}

}  // namespace loupe::cli
