// `loupe tokenize` and `loupe detokenize`: text <-> token ids with a model's vocabulary
// (a full model or a vocab-only GGUF). Output contract: docs/cli.md.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <optional>

#include "commands.h"
#include "token_view.h"
#include "gguf/file.h"
#include "model/vocab_load.h"
#include "tokenizer/tokenizer.h"

namespace loupe::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::optional<std::string> prompt;
  bool ids = false;
  bool no_bos = false;
  bool parse_special = false;
  bool show_special = false;
};

struct DetokenizeOptions {
  std::string model;
  std::vector<int64_t> ids;
  bool show_special = false;
  bool remove_special = false;
};

Expected<tokenizer::Tokenizer> open_tokenizer(const std::string& path) {
  LOUPE_ASSIGN_OR_RETURN(gguf::File file, gguf::File::open(path));
  return model::load_tokenizer(file);
}

int run_tokenize(const TokenizeOptions& opt) {
  auto tok = open_tokenizer(opt.model);
  if (!tok) return report(tok.status());
  std::string text;
  if (opt.prompt) {
    text = *opt.prompt;
  } else {
    std::ios::sync_with_stdio(false);
    text.assign(std::istreambuf_iterator<char>(std::cin), {});
  }
  std::vector<int32_t> ids = tok->tokenize(text, !opt.no_bos, opt.parse_special);
  std::string out;
  if (opt.ids) {
    for (size_t i = 0; i < ids.size(); ++i) out += fmt::format("{}{}", i ? " " : "", ids[i]);
    out += "\n";
  } else {
    out = token_lines(*tok, ids, opt.show_special);
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

int run_detokenize(const DetokenizeOptions& opt) {
  auto tok = open_tokenizer(opt.model);
  if (!tok) return report(tok.status());
  std::vector<int64_t> raw = opt.ids;
  if (raw.empty()) {  // ids from stdin, as `tokenize --ids` prints them
    for (int64_t id; std::cin >> id;) raw.push_back(id);
    if (!std::cin.eof())
      return report(
          make_error(ErrorCode::kInvalidArgument, "stdin holds something that is not a token id"));
  }
  std::vector<int32_t> ids;
  for (int64_t id : raw) {
    if (id < 0 || id >= tok->n_vocab())
      return report(make_error(ErrorCode::kInvalidArgument,
                               "token id {} is out of range: {} has {} tokens (0..{})", id,
                               opt.model, tok->n_vocab(), tok->n_vocab() - 1));
    ids.push_back(static_cast<int32_t>(id));
  }
  std::string text;
  if (opt.show_special) {
    // Special tokens in brackets, whitespace drawn, one readable line.
    std::string body = tok->detokenize(ids, opt.remove_special, true);
    text = readable(body, true);
  } else {
    text = tok->detokenize(ids, opt.remove_special, false);
  }
  if (isatty(STDOUT_FILENO) || opt.show_special) text += "\n";
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitOk;
}

}  // namespace

void add_tokenize(CLI::App& app) {
  auto topt = std::make_shared<TokenizeOptions>();
  CLI::App* t =
      app.add_subcommand("tokenize", "Turn text into token ids with a model's vocabulary");
  t->add_option("-m,--model", topt->model, "GGUF model or vocab-only file")->required();
  t->add_option("-p,--prompt", topt->prompt,
                "Text to tokenize (default: all of stdin, byte for byte)");
  t->add_flag("--ids", topt->ids, "Print one line of space-separated ids");
  t->add_flag("--no-bos", topt->no_bos,
              "Add no BOS/EOS (by default they are added as the file asks)");
  t->add_flag("--parse-special", topt->parse_special,
              "Text spelling a control token (<s>, <|im_start|>, ...) becomes that token");
  t->add_flag("--show-special", topt->show_special,
              "Draw whitespace (· → ↵) and label special, byte and unknown tokens");
  t->callback([topt] { exit_status() = run_tokenize(*topt); });

  auto dopt = std::make_shared<DetokenizeOptions>();
  CLI::App* d = app.add_subcommand("detokenize", "Turn token ids back into text");
  d->add_option("-m,--model", dopt->model, "GGUF model or vocab-only file")->required();
  d->add_option("ids", dopt->ids, "Token ids (default: read from stdin)");
  d->add_flag("--show-special", dopt->show_special,
              "Render control tokens and draw whitespace (· → ↵) on one line");
  d->add_flag("--remove-special", dopt->remove_special,
              "Drop a leading BOS and trailing EOS that the vocabulary adds");
  d->callback([dopt] { exit_status() = run_detokenize(*dopt); });
}

}  // namespace loupe::cli
