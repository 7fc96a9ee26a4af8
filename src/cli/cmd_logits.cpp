// `loupe logits`: evaluates token ids as one batch from an empty cache and writes the
// logits as little-endian float32 [n_positions, n_vocab] (the contract the conformance
// tests and the lab rely on).
#include <cstdio>
#include <memory>

#include "commands.h"
#include "model/arch.h"
#include "model_args.h"
#include "runtime/session.h"

namespace loupe::cli {
namespace {

struct LogitsOptions {
  std::string model;
  std::string tokens;
  std::string positions = "last";
  std::string output;
  int threads = 0;
  std::string cache_type_k = "f16";
  std::string cache_type_v = "f16";
};

Expected<std::vector<int64_t>> parse_positions(const std::string& text, int64_t n_tokens) {
  std::vector<int64_t> rows;
  if (text == "all") {
    for (int64_t i = 0; i < n_tokens; ++i) rows.push_back(i);
    return rows;
  }
  if (text == "last") return std::vector<int64_t>{n_tokens - 1};
  auto ids = parse_token_list(text);
  if (!ids)
    return make_error(ErrorCode::kInvalidArgument, "--positions {}: use all, last or I,J,...",
                      text);
  for (int32_t p : *ids) {
    if (p >= n_tokens)
      return make_error(ErrorCode::kInvalidArgument,
                        "--positions: {} is past the last token (index {})", p, n_tokens - 1);
    rows.push_back(p);
  }
  return rows;
}

int run_logits(const LogitsOptions& opt) {
  auto tokens = parse_token_list(opt.tokens);
  if (!tokens) return report(tokens.status());
  if (tokens->empty())
    return report(make_error(ErrorCode::kInvalidArgument, "--tokens: no token ids given"));
  auto rows = parse_positions(opt.positions, static_cast<int64_t>(tokens->size()));
  if (!rows) return report(rows.status());
  // The context is exactly the batch: logits come from one pass over an empty cache.
  auto params = make_run_params(opt.threads, static_cast<int64_t>(tokens->size()),
                                opt.cache_type_k, opt.cache_type_v);
  if (!params) return report(params.status());
  auto model = model::load_model(opt.model);
  if (!model) return report(model.status());
  auto session = runtime::Session::create(**model, *params);
  if (!session) return report(session.status());
  const int64_t n_vocab = (*session)->n_vocab();
  std::vector<float> logits(rows->size() * static_cast<size_t>(n_vocab));
  if (Status s = (*session)->eval(*tokens, *rows, logits.data()); !s.ok()) return report(s);
  FILE* out = stdout;
  if (!opt.output.empty()) {
    out = std::fopen(opt.output.c_str(), "wb");
    if (out == nullptr)
      return report(make_error(ErrorCode::kIo, "-o {}: cannot open for writing", opt.output));
  }
  const size_t written = std::fwrite(logits.data(), sizeof(float), logits.size(), out);
  const bool ok =
      written == logits.size() && (out == stdout ? std::fflush(out) == 0 : std::fclose(out) == 0);
  if (!ok)
    return report(make_error(ErrorCode::kIo, "writing the logits to {} failed",
                             opt.output.empty() ? "stdout" : opt.output));
  return kExitOk;
}

}  // namespace

void add_logits(CLI::App& app) {
  auto opt = std::make_shared<LogitsOptions>();
  CLI::App* c = app.add_subcommand(
      "logits", "Evaluate token ids as one batch and write float32 logits [n_positions, n_vocab]");
  c->add_option("-m,--model", opt->model, "GGUF model")->required();
  c->add_option("--tokens", opt->tokens, "Comma-separated token ids, used verbatim (no BOS added)")
      ->required();
  c->add_option("--positions", opt->positions, "all, last (default) or comma-separated indices");
  c->add_option("-o,--output", opt->output, "Output file (default: stdout)");
  c->add_option("-t,--threads", opt->threads, "Threads (default: all cores)");
  c->add_option("--cache-type-k", opt->cache_type_k,
                "KV cache type for K: f16 (default), f32, q8_0");
  c->add_option("--cache-type-v", opt->cache_type_v,
                "KV cache type for V: f16 (default), f32, q8_0");
  c->callback([opt] { exit_status() = run_logits(*opt); });
}

}  // namespace loupe::cli
