// `loupe template`: render a chat template exactly as transformers' apply_chat_template would.
//
//   loupe template (-m MODEL | --template-file FILE) --messages FILE.json [--tools FILE.json]
//                  [--vars FILE.json] [--add-generation-prompt] [--now ISO8601] [--show-special]
//
// stdout gets exactly the rendered prompt (no added newline): this output is a contract that
// checks compare byte for byte. The context is Hugging Face's: messages, tools (none unless
// --tools), documents = none, add_generation_prompt, continue_final_message = false, then the
// model's bos_token/eos_token (with -m), then every key of --vars (which wins).
// Exit status: 0 rendered, 1 bad input (files, JSON, model), 2 bad command line,
// 3 the template raised (syntax error, raise_exception, TypeError...; message on stderr).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>

#include <nlohmann/json.hpp>

#include "chat/template.h"
#include "commands.h"
#include "model/vocab_load.h"
#include "token_view.h"
#include "gguf/file.h"

namespace loupe::cli {
namespace {

constexpr int kExitTemplateRaised = 3;

using nlohmann::ordered_json;

struct TemplateCommandOptions {
  std::string model;
  std::string template_file;
  std::string messages;
  std::string tools;
  std::string vars;
  std::string now;
  bool add_generation_prompt = false;
  bool show_special = false;
  bool tokens = false;
};

Expected<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "{}: cannot open file", path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return make_error(ErrorCode::kIo, "{}: read failed", path);
  return text;
}

Expected<ordered_json> read_json(const std::string& path, const char* what) {
  LOUPE_ASSIGN_OR_RETURN(std::string text, read_file(path));
  ordered_json j = ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return make_error(ErrorCode::kInvalidArgument, "{}: {} is not valid JSON", path, what);
  return j;
}

// What a model file contributes: its template, its BOS/EOS strings, and the special token
// strings that --show-special highlights.
struct ModelFacts {
  std::string chat_template;
  std::optional<std::string> bos_token, eos_token;
  std::vector<std::string> special_tokens;
};

Expected<ModelFacts> read_model(const std::string& path) {
  LOUPE_ASSIGN_OR_RETURN(gguf::File f, gguf::File::open(path));
  ModelFacts facts;
  const gguf::Value* tmpl = f.find("tokenizer.chat_template");
  if (tmpl == nullptr || !tmpl->is_string())
    return make_error(
        ErrorCode::kNotFound,
        "{}: no chat template (tokenizer.chat_template); pass one with --template-file", path);
  facts.chat_template = *tmpl->as_string();
  const gguf::Value* tokens = f.find("tokenizer.ggml.tokens");
  if (tokens == nullptr || !tokens->is_array()) return facts;
  const auto& vocab = tokens->array();
  auto token_text = [&](int64_t id) -> std::optional<std::string> {
    if (id < 0 || static_cast<size_t>(id) >= vocab.size() || !vocab[id].is_string())
      return std::nullopt;
    return *vocab[id].as_string();
  };
  facts.bos_token = token_text(f.get_int_or("tokenizer.ggml.bos_token_id", -1));
  facts.eos_token = token_text(f.get_int_or("tokenizer.ggml.eos_token_id", -1));
  // llama.cpp token types: 3 = control, 4 = user-defined.
  const gguf::Value* types = f.find("tokenizer.ggml.token_type");
  if (types != nullptr && types->is_array()) {
    const auto& t = types->array();
    for (size_t id = 0; id < t.size() && id < vocab.size(); ++id) {
      auto type = t[id].as_int();
      if (type && (*type == 3 || *type == 4) && vocab[id].is_string() &&
          !vocab[id].as_string()->empty())
        facts.special_tokens.push_back(*vocab[id].as_string());
    }
  }
  return facts;
}

// Heuristic special tokens when there is no vocabulary: <|...|>, <｜...｜> and [UPPER_CASE].
std::vector<std::string> guess_special_tokens(const std::string& text) {
  std::vector<std::string> out;
  for (size_t k = 0; k < text.size(); ++k) {
    if (text.compare(k, 2, "<|") == 0) {
      size_t e = text.find("|>", k + 2);
      if (e != std::string::npos && e - k < 64 && text.find('\n', k) > e)
        out.push_back(text.substr(k, e + 2 - k));
    } else if (text.compare(k, 4, "<\xef\xbd\x9c") == 0) {  // "<｜" (fullwidth bar, DeepSeek)
      size_t e = text.find("\xef\xbd\x9c>", k + 4);
      if (e != std::string::npos && e - k < 96) out.push_back(text.substr(k, e + 4 - k));
    }
  }
  return out;
}

// For people: special tokens highlighted (color on a terminal, «» otherwise), newlines as ↵,
// tabs as →, carriage returns as ␍ and trailing spaces as ·.
std::string show_special(const std::string& text, std::vector<std::string> specials, bool color) {
  std::sort(specials.begin(), specials.end(),
            [](const auto& a, const auto& b) { return a.size() > b.size(); });
  specials.erase(std::unique(specials.begin(), specials.end()), specials.end());
  const char* open = color ? "\x1b[1;36m" : "\xc2\xab";  // «
  const char* close = color ? "\x1b[0m" : "\xc2\xbb";    // »
  const char* dim = color ? "\x1b[2m" : "";
  const char* undim = color ? "\x1b[0m" : "";
  std::string out;
  for (size_t k = 0; k < text.size();) {
    bool matched = false;
    for (const std::string& s : specials) {
      if (!s.empty() && text.compare(k, s.size(), s) == 0) {
        out += open + s + close;
        k += s.size();
        matched = true;
        break;
      }
    }
    if (matched) continue;
    char c = text[k];
    if (c == '\n') {
      out += std::string(dim) + "\xe2\x86\xb5" + undim + "\n";  // ↵
    } else if (c == '\t') {
      out += std::string(dim) + "\xe2\x86\x92" + undim;  // →
    } else if (c == '\r') {
      out += std::string(dim) + "\xe2\x90\x8d" + undim;  // ␍
    } else if (c == ' ' && text.find_first_not_of(' ', k) != std::string::npos &&
               text[text.find_first_not_of(' ', k)] != '\n') {
      out += ' ';
    } else if (c == ' ') {
      out += std::string(dim) + "\xc2\xb7" + undim;  // ·
    } else {
      out += c;
    }
    ++k;
  }
  if (out.empty() || out.back() != '\n') out += '\n';
  return out;
}

int run_template(const TemplateCommandOptions& opt) {
  std::string source;
  ModelFacts facts;
  if (!opt.model.empty()) {
    auto m = read_model(opt.model);
    if (!m) return report(m.status());
    facts = std::move(*m);
    source = facts.chat_template;
  } else {
    auto t = read_file(opt.template_file);
    if (!t) return report(t.status());
    source = std::move(*t);
  }

  auto messages = read_json(opt.messages, "--messages");
  if (!messages) return report(messages.status());
  if (!messages->is_array())
    return report(make_error(ErrorCode::kInvalidArgument,
                             "{}: --messages must hold a JSON array of messages, got {}",
                             opt.messages, messages->type_name()));
  ordered_json context = ordered_json::object();
  context["messages"] = std::move(*messages);
  context["tools"] = nullptr;
  if (!opt.tools.empty()) {
    auto tools = read_json(opt.tools, "--tools");
    if (!tools) return report(tools.status());
    context["tools"] = std::move(*tools);
  }
  context["documents"] = nullptr;
  context["add_generation_prompt"] = opt.add_generation_prompt;
  context["continue_final_message"] = false;
  if (facts.bos_token) context["bos_token"] = *facts.bos_token;
  if (facts.eos_token) context["eos_token"] = *facts.eos_token;
  if (!opt.vars.empty()) {
    auto vars = read_json(opt.vars, "--vars");
    if (!vars) return report(vars.status());
    if (!vars->is_object())
      return report(make_error(ErrorCode::kInvalidArgument,
                               "{}: --vars must hold a JSON object, got {}", opt.vars,
                               vars->type_name()));
    for (auto it = vars->begin(); it != vars->end(); ++it) context[it.key()] = it.value();
  }

  chat::RenderOptions render_options;
  if (!opt.now.empty()) {
    render_options.now = chat::DateTime::parse_iso8601(opt.now);
    if (!render_options.now)
      return report(make_error(ErrorCode::kInvalidArgument,
                               "--now {}: expected an ISO 8601 time such as 2024-07-26T12:00:00",
                               opt.now));
  }

  chat::TemplateError error;
  auto tmpl = chat::Template::parse(source, {}, &error);
  std::optional<std::string> prompt;
  if (tmpl) {
    auto rendered = tmpl->render(context, render_options, &error);
    if (rendered) prompt = std::move(*rendered);
  }
  if (!prompt) {
    std::fprintf(stderr, "loupe: template error: %s\n", error.to_string().c_str());
    return kExitTemplateRaised;
  }

  if (opt.tokens) {
    // What the model sees: special tokens in the rendered text are parsed as such, and BOS
    // is added only when the file asks for it and the template did not already write it.
    auto file = gguf::File::open(opt.model);
    if (!file) return report(file.status());
    auto tok = model::load_tokenizer(*file);
    if (!tok) return report(tok.status());
    bool add_bos = tok->add_bos() && tok->bos() >= 0 &&
                   !prompt->starts_with(tok->token_text(tok->bos()));
    std::vector<int32_t> ids = tok->tokenize(*prompt, add_bos, /*parse_special=*/true);
    std::string lines = token_lines(*tok, ids, opt.show_special);
    std::fwrite(lines.data(), 1, lines.size(), stdout);
    std::fprintf(stderr, "loupe template: %zu tokens%s\n", ids.size(),
                 add_bos ? " (BOS added by the tokenizer)" : "");
    return kExitOk;
  }

  if (opt.show_special) {
    std::vector<std::string> specials = facts.special_tokens;
    if (specials.empty()) specials = guess_special_tokens(*prompt);
    for (const char* key : {"bos_token", "eos_token"})
      if (context.contains(key) && context[key].is_string() &&
          !context[key].get<std::string>().empty())
        specials.push_back(context[key].get<std::string>());
    std::string shown = show_special(*prompt, std::move(specials), isatty(STDOUT_FILENO) != 0);
    std::fwrite(shown.data(), 1, shown.size(), stdout);
  } else {
    std::fwrite(prompt->data(), 1, prompt->size(), stdout);
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

void add_template(CLI::App& app) {
  auto opt = std::make_shared<TemplateCommandOptions>();
  CLI::App* cmd =
      app.add_subcommand("template", "Render a chat template (Jinja) for a conversation");
  auto* model = cmd->add_option("-m,--model", opt->model,
                                "GGUF model whose tokenizer.chat_template to render");
  auto* file =
      cmd->add_option("--template-file", opt->template_file, "Jinja template file to render");
  model->excludes(file);
  file->excludes(model);
  cmd->add_option("--messages", opt->messages, "JSON file: the array of messages")->required();
  cmd->add_option("--tools", opt->tools, "JSON file: the tools (function schemas); default none");
  cmd->add_option(
      "--vars", opt->vars,
      "JSON file: an object of extra template variables (bos_token, enable_thinking, ...)");
  cmd->add_flag("--add-generation-prompt", opt->add_generation_prompt,
                "End with the assistant turn's header");
  cmd->add_option("--now", opt->now, "strftime_now's clock, ISO 8601 (default: the system clock)");
  cmd->add_flag("--tokens", opt->tokens,
                "Print the rendered prompt tokenized (needs -m): one token per line");
  cmd->add_flag("--show-special", opt->show_special,
                "For people: highlight special tokens, show newlines, tabs and trailing spaces");
  cmd->callback([opt, cmd] {
    if (opt->model.empty() && opt->template_file.empty()) {
      std::fprintf(stderr,
                   "loupe template: one of -m MODEL or --template-file FILE is required\n%s",
                   cmd->help().c_str());
      exit_status() = kExitUsage;
      return;
    }
    if (opt->tokens && opt->model.empty()) {
      std::fprintf(stderr, "loupe template: --tokens needs -m MODEL (its vocabulary)\n");
      exit_status() = kExitUsage;
      return;
    }
    exit_status() = run_template(*opt);
  });
}

}  // namespace loupe::cli
