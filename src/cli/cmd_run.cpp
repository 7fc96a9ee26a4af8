// `loupe run`: greedy text completion. The prompt is tokenized as the vocabulary asks
// (BOS where add_bos), or taken verbatim from --tokens; the continuation is streamed to
// stdout and stops at an end-of-generation token unless --ignore-eos.
#include <cstdio>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "model/arch.h"
#include "model/vocab_load.h"
#include "model_args.h"
#include "runtime/session.h"
#include "tokenizer/tokenizer.h"

namespace loupe::cli {
namespace {

struct RunOptions {
  std::string model;
  std::optional<std::string> prompt;
  std::optional<std::string> tokens;
  int64_t n_predict = 64;
  double temp = 0.0;
  bool raw = false;
  bool ignore_eos = false;
  bool json = false;
  int threads = 0;
  std::string cache_type_k = "f16";
  std::string cache_type_v = "f16";
};

int run_run(const RunOptions& opt) {
  if (opt.prompt.has_value() == opt.tokens.has_value())
    return report(
        make_error(ErrorCode::kInvalidArgument, "give exactly one of -p TEXT or --tokens IDS"));
  if (opt.temp != 0.0)
    return report(make_error(ErrorCode::kUnsupported,
                             "--temp {}: only greedy decoding (--temp 0) is implemented so far",
                             opt.temp));
  if (opt.n_predict < 0) return report(make_error(ErrorCode::kInvalidArgument, "-n must be >= 0"));
  auto model = model::load_model(opt.model);
  if (!model) return report(model.status());
  auto tok = model::load_tokenizer(*(*model)->file);
  if (!tok) return report(tok.status());

  const bool has_template = (*model)->file->find("tokenizer.chat_template") != nullptr;
  if (!has_template)
    std::fprintf(stderr, "loupe: the model has no chat template: completing the raw text\n");
  else if (!opt.raw)
    std::fprintf(stderr,
                 "loupe: chat templates are not applied yet: completing the raw text (as --raw)\n");

  std::vector<int32_t> prompt;
  if (opt.tokens) {
    auto ids = parse_token_list(*opt.tokens);
    if (!ids) return report(ids.status());
    prompt = std::move(*ids);
  } else {
    prompt = tok->tokenize(*opt.prompt, /*add_special=*/true, /*parse_special=*/false);
  }
  if (prompt.empty()) return report(make_error(ErrorCode::kInvalidArgument, "the prompt is empty"));

  runtime::RunParams params;
  params.n_threads = opt.threads;
  auto ck = parse_cache_type(opt.cache_type_k, "--cache-type-k");
  if (!ck) return report(ck.status());
  auto cv = parse_cache_type(opt.cache_type_v, "--cache-type-v");
  if (!cv) return report(cv.status());
  params.cache_type_k = *ck;
  params.cache_type_v = *cv;
  auto session = runtime::Session::create(**model, params);
  if (!session) return report(session.status());
  runtime::Session& s = **session;
  if (static_cast<int64_t>(prompt.size()) > s.n_ctx())
    return report(make_error(ErrorCode::kOutOfRange,
                             "the prompt has {} tokens, more than the context size {}",
                             prompt.size(), s.n_ctx()));

  std::vector<float> logits(static_cast<size_t>(s.n_vocab()));
  const int64_t last = static_cast<int64_t>(prompt.size()) - 1;
  if (Status st = s.eval(prompt, std::span<const int64_t>(&last, 1), logits.data()); !st.ok())
    return report(st);

  tokenizer::StreamDecoder decoder(*tok);
  std::vector<int32_t> generated;
  std::string text;
  for (int64_t i = 0; i < opt.n_predict; ++i) {
    const int32_t next = argmax(logits.data(), s.n_vocab());
    if (!opt.ignore_eos && tok->is_eog(next)) break;
    generated.push_back(next);
    const std::string piece = decoder.push(next);
    text += piece;
    if (!opt.json) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    if (i + 1 == opt.n_predict) break;
    if (s.n_past() >= s.n_ctx()) {
      std::fprintf(stderr, "\nloupe: context full (%lld tokens): stopping\n",
                   static_cast<long long>(s.n_ctx()));
      break;
    }
    const int64_t row = 0;
    if (Status st = s.eval(std::span<const int32_t>(&next, 1), std::span<const int64_t>(&row, 1),
                           logits.data());
        !st.ok())
      return report(st);
  }
  const std::string rest = decoder.flush();
  text += rest;
  if (opt.json) {
    nlohmann::json j{{"tokens", generated}, {"text", text}};
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("%s\n", rest.c_str());
  }
  return kExitOk;
}

}  // namespace

void add_run(CLI::App& app) {
  auto opt = std::make_shared<RunOptions>();
  CLI::App* c = app.add_subcommand("run", "Generate a greedy continuation of a prompt");
  c->add_option("-m,--model", opt->model, "GGUF model")->required();
  c->add_option("-p,--prompt", opt->prompt,
                "Prompt text (tokenized with BOS as the vocabulary asks)");
  c->add_option("--tokens", opt->tokens, "Prompt as comma-separated token ids, used verbatim");
  c->add_option("-n,--n-predict", opt->n_predict, "Tokens to generate (default 64)");
  c->add_option("--temp", opt->temp, "Temperature; only 0 (greedy) for now");
  c->add_flag("--raw", opt->raw, "Complete the raw text, no chat template");
  c->add_flag("--ignore-eos", opt->ignore_eos, "Do not stop at end-of-generation tokens");
  c->add_flag("--json", opt->json,
              "Print {\"tokens\":[...],\"text\":\"...\"} for the generated part");
  c->add_option("-t,--threads", opt->threads, "Threads (default: all cores)");
  c->add_option("--cache-type-k", opt->cache_type_k,
                "KV cache type for K: f16 (default), f32, q8_0");
  c->add_option("--cache-type-v", opt->cache_type_v,
                "KV cache type for V: f16 (default), f32, q8_0");
  c->callback([opt] { exit_status() = run_run(*opt); });
}

}  // namespace loupe::cli
