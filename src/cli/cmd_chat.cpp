// `loupe chat`: an interactive conversation with a model, with its insides on request.
//
//   loupe chat -m MODEL [--system TEXT] [-n N] [-c N] [-t N] [--logprobs K] [--stop STR]...
//              [--context-overflow stop|drop-oldest] [sampler flags as `loupe run`]
//
// Input is edited with readline on a terminal (history, Ctrl-C clears the line); a line ending
// in \ continues on the next, and """ opens a block that a line holding """ closes. Ctrl-C
// while the model writes stops it and keeps the chat; Ctrl-D or /bye leaves. Commands: /help.
// Without a terminal on stdin, lines are read as they come (scripts, tests).
#include <readline/history.h>
#include <readline/readline.h>
#include <sys/select.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <deque>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <random>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "engine/generator.h"
#include "engine/model.h"
#include "engine/prompt.h"
#include "gen_view.h"
#include "model_args.h"
#include "sampler_args.h"
#include "token_view.h"

namespace loupe::cli {
namespace {

using nlohmann::ordered_json;

std::atomic<bool> g_interrupted{false};
void on_sigint(int) {
  g_interrupted.store(true);
}

struct ChatOptions {
  std::string model;
  std::optional<std::string> system;
  int32_t n_predict = -1;
  int64_t n_ctx = 0;
  int threads = 0;
  int32_t n_logprobs = -1;
  std::vector<std::string> stop;
  std::string context_overflow = "stop";
  std::string cache_type_k = "f16";
  std::string cache_type_v = "f16";
  SamplerArgs sampler;
};

constexpr const char* kHelp =
    "Commands:\n"
    "  /set <param> <value>   a sampler setting (temp, top_k, top_p, min_p, repeat_penalty,\n"
    "                         seed, ... as the flags name them), n_predict, stop, or\n"
    "                         /set system <text>   (/set stop none clears stop strings)\n"
    "  /show prompt|params|template|tokens|stats|model\n"
    "  /logprobs on [K]|off   colour replies by probability; /show tokens lists alternatives\n"
    "  /retry                 regenerate the last reply (with the settings now in effect)\n"
    "  /clear                 forget the conversation (the system prompt stays)\n"
    "  /save FILE, /load FILE the conversation and its provenance as JSON\n"
    "  /bye                   leave (also Ctrl-D)\n"
    "Input: end a line with \\ to continue it; \"\"\" starts and ends a multi-line block.\n"
    "Ctrl-C stops the model mid-reply.\n";

class Chat {
 public:
  Chat(const engine::Model& model, engine::Generator& gen, engine::ChatFormat format,
       const ChatOptions& opt, sample::SamplerParams params)
      : model_(model), gen_(gen), format_(std::move(format)), params_(std::move(params)) {
    system_ = opt.system;
    n_predict_ = opt.n_predict;
    n_logprobs_ = opt.n_logprobs;
    stop_ = opt.stop;
    drop_oldest_ = opt.context_overflow == "drop-oldest";
    color_ = stdout_color();
    if (params_.seed == sample::kRandomSeed) params_.seed = std::random_device{}();
  }

  // Handles one submitted input; returns false to leave.
  bool handle(const std::string& input) {
    std::string line = input;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (line.empty()) return true;
    if (line[0] == '/') return command(line);
    respond(line);
    return true;
  }

 private:
  void out(const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
  }
  std::string dim(const std::string& s) const {
    return color_ ? fmt::format("{}{}{}", kDim, s, kReset) : s;
  }
  void note(const std::string& s) { out(dim(s) + "\n"); }
  void error(const std::string& s) { out(fmt::format("error: {}\n", s)); }

  std::vector<engine::Message> messages() const {
    std::vector<engine::Message> m;
    if (system_ && !system_->empty()) m.push_back({"system", *system_});
    m.insert(m.end(), turns_.begin(), turns_.end());
    return m;
  }

  Expected<std::vector<int32_t>> render(const std::vector<engine::Message>& msgs,
                                        std::string& text) {
    auto rendered = engine::render_chat(model_, format_, msgs, /*add_generation_prompt=*/true);
    if (!rendered) return rendered.status();
    text = std::move(*rendered);
    return model_.tokenize_prompt(text, /*parse_special=*/true);
  }

  int64_t n_ctx() const { return gen_.n_ctx(); }
  // Room kept free for the reply when deciding whether a prompt fits.
  int64_t reply_room() const {
    return n_predict_ > 0 ? std::min<int64_t>(n_predict_, n_ctx() / 2) : n_ctx() / 4;
  }

  std::string overflow_help() const {
    return "/clear to start over, restart with a larger --ctx (-c), or with "
           "--context-overflow drop-oldest to drop whole old turns";
  }

  void respond(const std::string& user) {
    turns_.push_back({"user", user});
    std::string text;
    auto tokens = render(messages(), text);
    if (!tokens) {
      turns_.pop_back();
      return error(tokens.status().message());
    }
    // Never truncate silently: drop whole turns only when asked to, and say so.
    if (drop_oldest_ && static_cast<int64_t>(tokens->size()) + reply_room() > n_ctx()) {
      int dropped = 0;
      while (turns_.size() >= 3 && static_cast<int64_t>(tokens->size()) + reply_room() > n_ctx()) {
        // The oldest user message and the replies up to the next user message.
        size_t end = 1;
        while (end < turns_.size() - 1 && turns_[end].role != "user") ++end;
        turns_.erase(turns_.begin(), turns_.begin() + static_cast<std::ptrdiff_t>(end));
        ++dropped;
        tokens = render(messages(), text);
        if (!tokens) {
          turns_.pop_back();
          return error(tokens.status().message());
        }
      }
      if (dropped > 0)
        note(
            fmt::format("[context: dropped the {} oldest turn{} to fit {} tokens "
                        "(--context-overflow drop-oldest)]",
                        dropped, dropped == 1 ? "" : "s", n_ctx()));
    }
    if (static_cast<int64_t>(tokens->size()) >= n_ctx()) {
      turns_.pop_back();
      if (drop_oldest_)
        return error(
            fmt::format("this message ({} tokens with the system prompt) does not fit "
                        "the context of {} tokens: restart with a larger --ctx (-c)",
                        tokens->size(), n_ctx()));
      return error(
          fmt::format("the conversation ({} tokens with this message) does not fit the "
                      "context of {} tokens: {}",
                      tokens->size(), n_ctx(), overflow_help()));
    }
    generate(*tokens, text);
  }

  void generate(const std::vector<int32_t>& prompt, const std::string& prompt_text) {
    last_prompt_ = prompt_text;
    last_prompt_tokens_ = prompt;
    engine::GenerateRequest req;
    req.prompt = prompt;
    req.n_predict = n_predict_;
    req.sampler = params_;
    req.stop = stop_;
    req.n_logprobs = n_logprobs_;
    req.cancel = &g_interrupted;
    g_interrupted.store(false);
    const bool paint = color_ && n_logprobs_ >= 0;
    auto r = gen_.generate(req, [&](const engine::TokenEvent& ev) {
      const double p = ev.logprobs != nullptr ? std::exp(ev.logprobs->logprob) : 1.0;
      out(colored(ev.text, p, paint && ev.logprobs != nullptr));
      return true;
    });
    const bool interrupted = g_interrupted.exchange(false);
    if (!r) {
      out("\n");
      turns_.pop_back();
      return error(r.status().message());
    }
    if (r->stop_reason == engine::StopReason::kCancelled && r->tokens.empty()) {
      turns_.pop_back();
      return note("[interrupted before the reply began: the message was not kept]");
    }
    turns_.push_back({"assistant", r->text});
    last_ = std::move(*r);
    std::string end = last_->text.ends_with('\n') ? "" : "\n";
    if (last_->stop_reason == engine::StopReason::kCancelled)
      end += interrupted ? "[interrupted]\n" : "[stopped]\n";
    out(end);
    if (last_->stop_reason == engine::StopReason::kContext)
      error(fmt::format("the context is full ({} tokens): the reply stops here. {}", n_ctx(),
                        overflow_help()));
    note(fmt::format("[{} tokens, {:.1f} t/s · context {}/{}]", last_->tokens.size(),
                     last_->timings.predicted_per_second(), context_used(), n_ctx()));
  }

  // Tokens of the conversation held in the KV cache.
  int64_t context_used() const { return static_cast<int64_t>(gen_.cached_tokens().size()); }

  static std::vector<std::string> split_words(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> w;
    for (std::string s; in >> s;) w.push_back(s);
    return w;
  }

  bool command(const std::string& line) {
    const std::vector<std::string> w = split_words(line);
    const std::string& cmd = w[0];
    auto rest_after = [&](size_t n_words) {
      // The text after the first n words, verbatim (system prompts keep their spacing).
      size_t pos = 0;
      for (size_t k = 0; k < n_words; ++k) {
        pos = line.find_first_not_of(" \t", pos);
        pos = line.find_first_of(" \t", pos);
        if (pos == std::string::npos) return std::string();
      }
      pos = line.find_first_not_of(" \t", pos);
      return pos == std::string::npos ? std::string() : line.substr(pos);
    };
    if (cmd == "/bye" || cmd == "/exit" || cmd == "/quit") return false;
    if (cmd == "/help" || cmd == "/?") {
      out(kHelp);
    } else if (cmd == "/set") {
      if (w.size() < 3) {
        error("usage: /set <param> <value>, e.g. /set temp 0 (/show params lists them)");
      } else {
        set(w[1], rest_after(2));
      }
    } else if (cmd == "/show") {
      show(w.size() > 1 ? w[1] : "");
    } else if (cmd == "/logprobs") {
      if (w.size() >= 2 && w[1] == "off") {
        n_logprobs_ = -1;
        note("[logprobs off]");
      } else if (w.size() >= 2 && w[1] == "on") {
        int k = 5;
        if (w.size() >= 3) k = std::atoi(w[2].c_str());
        if (k < 0 || k > 20) return error("/logprobs on K: K from 0 to 20"), true;
        n_logprobs_ = k;
        note(fmt::format("[logprobs on, {} alternatives]", k));
        if (color_) note(color_legend());
      } else {
        error("usage: /logprobs on [K] | off");
      }
    } else if (cmd == "/clear") {
      turns_.clear();
      last_.reset();
      last_prompt_.clear();
      last_prompt_tokens_.clear();
      gen_.reset();
      note("[conversation cleared; the system prompt stays]");
    } else if (cmd == "/retry") {
      if (turns_.size() < 2 || turns_.back().role != "assistant") {
        error("/retry needs a reply to redo");
      } else {
        turns_.pop_back();
        const std::string user = turns_.back().content;
        turns_.pop_back();
        note(fmt::format("[retry: temp {} · top_k {} · top_p {} · seed {}]", params_.temp,
                         params_.top_k, params_.top_p, params_.seed));
        respond(user);
      }
    } else if (cmd == "/save") {
      if (w.size() < 2) return error("usage: /save FILE"), true;
      save(rest_after(1));
    } else if (cmd == "/load") {
      if (w.size() < 2) return error("usage: /load FILE"), true;
      load(rest_after(1));
    } else {
      error(fmt::format("unknown command {} (/help lists them)", cmd));
    }
    return true;
  }

  void set(const std::string& name, const std::string& value) {
    std::string key = name;
    for (char& c : key)
      if (c == '-') c = '_';
    if (key == "system") {
      system_ = value;
      return note("[system prompt set]");
    }
    if (key == "n_predict" || key == "num_predict" || key == "predict" || key == "n") {
      const long v = std::strtol(value.c_str(), nullptr, 10);
      if (v < -1) return error("n_predict: -1 (until the context is full) or more");
      n_predict_ = static_cast<int32_t>(v);
      return note(fmt::format("[n_predict = {}]", n_predict_));
    }
    if (key == "stop") {
      if (value == "none") {
        stop_.clear();
      } else {
        stop_.push_back(value);
      }
      return note(fmt::format("[stop = {}]", ordered_json(stop_).dump()));
    }
    if (key == "logprobs") return (void)command("/logprobs on " + value);
    sample::SamplerParams p = params_;
    auto known = set_sampler_param(p, key == "temperature" ? "temp" : key, value);
    if (!known) return error(known.status().message());
    if (!*known) return error(fmt::format("unknown setting '{}' (/show params lists them)", name));
    if (p.seed == sample::kRandomSeed) p.seed = std::random_device{}();
    // Validate now, not at the next turn.
    auto chain = sample::SamplerChain::create(p, model_.chain_setup(n_ctx()));
    if (!chain) return error(chain.status().message());
    params_ = p;
    note(fmt::format("[{} = {}]", name, value));
  }

  ordered_json settings_json() const {
    ordered_json s = sampler_params_to_json(params_);
    s["n_predict"] = n_predict_;
    s["n_ctx"] = n_ctx();
    s["stop"] = stop_;
    s["logprobs"] = n_logprobs_;
    s["context_overflow"] = drop_oldest_ ? "drop-oldest" : "stop";
    return s;
  }

  void show(const std::string& what) {
    if (what == "prompt") {
      std::string text = last_prompt_;
      std::vector<int32_t> tokens = last_prompt_tokens_;
      if (text.empty()) {
        auto r = render(messages(), text);
        if (!r) return error(r.status().message());
        tokens = *r;
      }
      out(fmt::format("--- prompt: {} tokens{} ---\n{}{}--- end of prompt ---\n", tokens.size(),
                      format_.fallback ? " (ChatML fallback)" : "", text,
                      text.empty() || text.back() != '\n' ? "\n" : ""));
    } else if (what == "params") {
      out(settings_json().dump(2) + "\n");
      out(fmt::format("system: {}\n", system_ ? ordered_json(*system_).dump() : "none"));
    } else if (what == "template") {
      out(fmt::format("--- template{} ---\n{}\n--- end of template ---\n",
                      format_.fallback ? " (ChatML: the model has none)" : "", format_.source));
    } else if (what == "tokens") {
      if (!last_) return note("[no reply yet]");
      out(fmt::format("prompt: {} tokens ({} reused from the cache); reply: {} tokens\n",
                      last_->n_prompt, last_->timings.cache_n, last_->tokens.size()));
      if (!last_->logprobs.empty()) {
        for (const auto& lp : last_->logprobs)
          out(alternatives_line(model_.tokenizer(), lp, color_) + "\n");
      } else {
        out(token_lines(model_.tokenizer(), last_->tokens, /*show_special=*/false));
        note("[/logprobs on shows each token's probability and alternatives]");
      }
    } else if (what == "stats") {
      if (!last_) return note(fmt::format("[no reply yet · context 0/{}]", n_ctx()));
      out(fmt::format("{}\ncontext {}/{} tokens\n", stats_line(*last_), context_used(), n_ctx()));
    } else if (what == "model") {
      const model::Hparams& hp = model_.hparams();
      auto sha = model_.sha256();
      out(fmt::format(
          "name     {}\npath     {}\narch     {}\nparams   {}\nsize     {} bytes\nlayers   {}\n"
          "embd     {}\nvocab    {}\ncontext  {} (training {})\ntemplate {}\nsha256   {}\n",
          model_.name(), model_.path(), hp.arch, hp.n_params, model_.file_size(), hp.n_layer,
          hp.n_embd, hp.n_vocab, n_ctx(), hp.n_ctx_train,
          format_.fallback ? "none (ChatML fallback)" : "the model's own",
          sha ? *sha : sha.status().message()));
    } else {
      error("usage: /show prompt|params|template|tokens|stats|model");
    }
  }

  void save(const std::string& path) {
    auto sha = model_.sha256();
    if (!sha) return error(sha.status().message());
    ordered_json j = ordered_json::object();
    j["loupe_version"] = LOUPE_VERSION;
    char when[32];
    const std::time_t now = std::time(nullptr);
    std::tm tm = {};
    gmtime_r(&now, &tm);
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    j["saved_at"] = when;
    const model::Hparams& hp = model_.hparams();
    j["model"] = {{"path", model_.path()},   {"name", model_.name()},           {"arch", hp.arch},
                  {"n_params", hp.n_params}, {"file_size", model_.file_size()}, {"sha256", *sha}};
    j["template"] = {{"source", format_.source}, {"fallback", format_.fallback}};
    j["settings"] = settings_json();
    j["seed"] = params_.seed;
    j["system"] = system_ ? ordered_json(*system_) : ordered_json(nullptr);
    ordered_json msgs = ordered_json::array();
    for (const auto& m : turns_) msgs.push_back({{"role", m.role}, {"content", m.content}});
    j["messages"] = std::move(msgs);
    std::ofstream f(path, std::ios::binary);
    f << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    if (!f) return error(fmt::format("{}: cannot write", path));
    note(fmt::format("[saved {} messages to {}]", turns_.size(), path));
  }

  void load(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return error(fmt::format("{}: cannot open", path));
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    ordered_json j = ordered_json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return error(fmt::format("{}: not a saved chat (invalid JSON)", path));
    if (!j.contains("messages") || !j["messages"].is_array())
      return error(fmt::format("{}: no \"messages\" array", path));
    std::vector<engine::Message> turns;
    for (const auto& m : j["messages"]) {
      if (!m.is_object() || !m.contains("role") || !m.contains("content") ||
          !m["role"].is_string() || !m["content"].is_string())
        return error(fmt::format("{}: each message needs string \"role\" and \"content\"", path));
      turns.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    }
    sample::SamplerParams p = params_;
    int32_t n_predict = n_predict_, n_logprobs = n_logprobs_;
    std::vector<std::string> stop = stop_;
    if (j.contains("settings") && j["settings"].is_object()) {
      ordered_json s = j["settings"];
      auto take_int = [&](const char* key, int32_t& dst) {
        if (s.contains(key) && s[key].is_number_integer()) dst = s[key].get<int32_t>();
        s.erase(key);
      };
      take_int("n_predict", n_predict);
      take_int("logprobs", n_logprobs);
      if (s.contains("stop") && s["stop"].is_array()) {
        stop.clear();
        for (const auto& x : s["stop"])
          if (x.is_string()) stop.push_back(x.get<std::string>());
      }
      for (const char* key : {"stop", "n_ctx", "context_overflow"}) s.erase(key);
      if (Status st = sampler_params_from_json(s, p); !st.ok())
        return error(fmt::format("{}: settings: {}", path, st.message()));
    }
    if (p.seed == sample::kRandomSeed) p.seed = std::random_device{}();
    if (j.contains("model") && j["model"].is_object() && j["model"].contains("sha256")) {
      auto sha = model_.sha256();
      if (sha && j["model"]["sha256"] != *sha)
        note(fmt::format("[note: saved with another model ({}); continuing with {}]",
                         j["model"].value("name", std::string("?")), model_.name()));
    }
    params_ = p;
    n_predict_ = n_predict;
    n_logprobs_ = n_logprobs;
    stop_ = stop;
    if (j.contains("system"))
      system_ = j["system"].is_string() ? std::optional<std::string>(j["system"].get<std::string>())
                                        : std::nullopt;
    turns_ = std::move(turns);
    last_.reset();
    last_prompt_.clear();
    last_prompt_tokens_.clear();
    note(fmt::format("[loaded {} messages and the settings from {}; seed {}]", turns_.size(), path,
                     params_.seed));
  }

  const engine::Model& model_;
  engine::Generator& gen_;
  engine::ChatFormat format_;
  sample::SamplerParams params_;
  std::optional<std::string> system_;
  int32_t n_predict_ = -1;
  int32_t n_logprobs_ = -1;
  std::vector<std::string> stop_;
  bool drop_oldest_ = false;
  bool color_ = false;
  std::vector<engine::Message> turns_;
  std::string last_prompt_;
  std::vector<int32_t> last_prompt_tokens_;
  std::optional<engine::GenerateResult> last_;
};

// Joins continuation lines (trailing \) and """ blocks into one message.
class InputAssembler {
 public:
  // Returns a complete input when `line` finishes one.
  std::optional<std::string> push(std::string line) {
    if (in_block_) {
      if (line == "\"\"\"" || (line.size() >= 3 && line.ends_with("\"\"\""))) {
        buffer_ += line.substr(0, line.size() - 3);
        in_block_ = false;
        return take();
      }
      buffer_ += line + "\n";
      return std::nullopt;
    }
    if (buffer_.empty() && line.starts_with("\"\"\"")) {
      std::string rest = line.substr(3);
      if (rest.size() >= 3 && rest.ends_with("\"\"\"")) return rest.substr(0, rest.size() - 3);
      in_block_ = true;
      if (!rest.empty()) buffer_ = rest + "\n";
      return std::nullopt;
    }
    if (!line.empty() && line.back() == '\\') {
      line.pop_back();
      buffer_ += line + "\n";
      return std::nullopt;
    }
    buffer_ += line;
    return take();
  }
  bool pending() const { return in_block_ || !buffer_.empty(); }
  void clear() {
    buffer_.clear();
    in_block_ = false;
  }

 private:
  std::string take() {
    std::string s = std::move(buffer_);
    buffer_.clear();
    return s;
  }
  std::string buffer_;
  bool in_block_ = false;
};

// readline's callback interface, so that Ctrl-C at the prompt can clear the line.
std::deque<std::optional<std::string>>* g_lines = nullptr;
void on_line(char* line) {
  if (line == nullptr) {
    g_lines->push_back(std::nullopt);
    rl_callback_handler_remove();  // readline would otherwise keep reporting EOF
    return;
  }
  if (*line != '\0') add_history(line);
  g_lines->push_back(std::string(line));
  std::free(line);
}

void run_terminal(Chat& chat) {
  std::deque<std::optional<std::string>> lines;
  g_lines = &lines;
  rl_catch_signals = 0;
  InputAssembler input;
  auto prompt = [&] { return input.pending() ? "... " : ">>> "; };
  rl_callback_handler_install(prompt(), on_line);
  bool done = false;
  while (!done) {
    if (g_interrupted.exchange(false)) {
      // Ctrl-C at the prompt: drop what was typed and start a fresh line.
      input.clear();
      rl_free_line_state();
      rl_callback_sigcleanup();
      rl_replace_line("", 0);
      std::fputs("^C\n", stdout);
      std::fflush(stdout);
      rl_callback_handler_remove();
      rl_callback_handler_install(prompt(), on_line);
      continue;
    }
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(STDIN_FILENO, &fds);
    if (select(STDIN_FILENO + 1, &fds, nullptr, nullptr, nullptr) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    rl_callback_read_char();
    while (!lines.empty() && !done) {
      std::optional<std::string> line = std::move(lines.front());
      lines.pop_front();
      if (!line) {
        std::fputs("\n", stdout);
        done = true;
        break;
      }
      std::optional<std::string> text = input.push(*line);
      if (!text) continue;
      rl_callback_handler_remove();  // the terminal back to normal while the model writes
      done = !chat.handle(*text);
      if (!done) rl_callback_handler_install(prompt(), on_line);
    }
    if (!done && lines.empty()) rl_set_prompt(prompt());
  }
  rl_callback_handler_remove();
  g_lines = nullptr;
}

void run_piped(Chat& chat) {
  InputAssembler input;
  for (std::string line; std::getline(std::cin, line);) {
    std::optional<std::string> text = input.push(line);
    if (text && !chat.handle(*text)) return;
  }
}

int run_chat(const ChatOptions& opt) {
  if (opt.context_overflow != "stop" && opt.context_overflow != "drop-oldest") {
    std::fprintf(stderr, "loupe chat: --context-overflow %s: use stop or drop-oldest\n",
                 opt.context_overflow.c_str());
    return kExitUsage;
  }
  if (opt.n_logprobs > 20 || opt.n_logprobs < -1)
    return report(
        make_error(ErrorCode::kInvalidArgument, "--logprobs {}: use 0 to 20", opt.n_logprobs));
  auto sampler = resolve_sampler(opt.sampler);
  if (!sampler) return report(sampler.status());
  auto grammar = resolve_grammar(opt.sampler);
  if (!grammar) return report(grammar.status());
  if (!grammar->empty())
    return report(make_error(ErrorCode::kUnsupported,
                             "grammars are for `loupe run`; chat replies are unconstrained"));
  auto model = engine::Model::load(opt.model);
  if (!model) return report(model.status());
  auto params = make_run_params(opt.threads, opt.n_ctx, opt.cache_type_k, opt.cache_type_v);
  if (!params) return report(params.status());
  auto gen = engine::Generator::create(**model, *params);
  if (!gen) return report(gen.status());
  engine::ChatFormat format = *engine::chat_format(**model, /*allow_fallback=*/true);
  if (!format.fallback && !(*model)->chat_template()->has_value())
    return report((*model)->chat_template()->status().with_context("the model's chat template"));

  Chat chat(**model, **gen, format, opt, *sampler);
  const bool tty = stdin_is_tty();
  if (tty) {
    std::printf(
        "loupe chat · %s · context %lld tokens%s\n/help for commands, Ctrl-D or /bye to "
        "leave\n",
        (*model)->name().c_str(), static_cast<long long>((*gen)->n_ctx()),
        format.fallback ? " · no chat template: ChatML fallback" : "");
    std::fflush(stdout);
  }
  if (format.fallback)
    std::fprintf(stderr,
                 "loupe: the model has no chat template: using ChatML, which it was not trained "
                 "on\n");

  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_sa = {};
  sigaction(SIGINT, &sa, &old_sa);
  if (tty)
    run_terminal(chat);
  else
    run_piped(chat);
  sigaction(SIGINT, &old_sa, nullptr);
  return kExitOk;
}

}  // namespace

void add_chat(CLI::App& app) {
  auto opt = std::make_shared<ChatOptions>();
  CLI::App* c = app.add_subcommand("chat", "Talk with a model interactively (/help inside)");
  c->add_option("-m,--model", opt->model, "GGUF model")->required();
  c->add_option("--system,--system-prompt", opt->system, "System prompt");
  c->add_option("-n,--n-predict,--predict", opt->n_predict,
                "Tokens per reply at most, -1 until end-of-turn or a full context")
      ->capture_default_str();
  c->add_option("-c,--ctx-size,--ctx", opt->n_ctx,
                "Context size in tokens, 0 = min(training context, 4096)")
      ->capture_default_str();
  c->add_option("-t,--threads", opt->threads, "Threads (default: all cores)");
  c->add_option("--logprobs", opt->n_logprobs,
                "Start with /logprobs on K: replies coloured by probability");
  c->add_option("--stop", opt->stop, "Stop a reply when this text appears (repeatable)")
      ->allow_extra_args(false);
  c->add_option("--context-overflow", opt->context_overflow,
                "When the conversation outgrows the context: stop (say so) or drop-oldest "
                "(drop whole old turns, and say so)")
      ->capture_default_str();
  c->add_option("--cache-type-k", opt->cache_type_k, "KV cache type for K: f16, f32, q8_0");
  c->add_option("--cache-type-v", opt->cache_type_v, "KV cache type for V: f16, f32, q8_0");
  add_sampler_options(c, opt->sampler);
  c->callback([opt] { exit_status() = run_chat(*opt); });
}

}  // namespace loupe::cli
