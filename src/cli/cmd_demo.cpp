// `loupe demo`: the first thing a newcomer runs (README's first command, `make run`). Needs no
// download: it synthesizes a small random-weight model (the stories-15m shape, with a ChatML
// template and its two special tokens in the vocabulary) and walks through inspect -> the
// rendered prompt -> generation with probabilities -> the effect of temperature, in well under a
// minute. On a terminal it waits for Enter between steps; without one it runs straight through.
//
//   loupe demo [-y] [-t N] [--keep-model FILE.gguf]
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include <fmt/format.h>

#include "base/thread_pool.h"
#include "commands.h"
#include "engine/generator.h"
#include "engine/model.h"
#include "engine/prompt.h"
#include "format.h"
#include "gen_view.h"
#include "model/synth.h"
#include "token_view.h"

namespace loupe::cli {
namespace {

struct DemoOptions {
  bool yes = false;
  int threads = 0;
  std::string keep_model;
};

constexpr const char* kShape = "stories-15m";
constexpr uint64_t kSeed = 1;
// llama.cpp's token type for control tokens (tokenizer.ggml.token_type).
constexpr int32_t kTokenTypeControl = 3;

class Demo {
 public:
  explicit Demo(const DemoOptions& opt) : opt_(opt) {
    color_ = stdout_color();
    interactive_ = stdin_is_tty() && !opt.yes;
  }

  int run();

 private:
  void say(const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
  }
  std::string bold(const std::string& s) const {
    return color_ ? fmt::format("{}{}{}", kBold, s, kReset) : s;
  }
  std::string dim(const std::string& s) const {
    return color_ ? fmt::format("{}{}{}", kDim, s, kReset) : s;
  }
  void step(int n, const std::string& title) {
    say(fmt::format("\n{}\n", bold(fmt::format("── {}. {} ", n, title) + std::string(40, '-'))));
  }
  void pause() {
    if (!interactive_) return;
    say(dim("   [Enter] to continue, q to quit "));
    std::string line;
    if (!std::getline(std::cin, line) || line == "q") quit_ = true;
  }

  Status synthesize(const std::string& path);
  Status inspect(const std::string& path);

  DemoOptions opt_;
  bool color_ = false;
  bool interactive_ = false;
  bool quit_ = false;
};

Status Demo::synthesize(const std::string& path) {
  LOUPE_ASSIGN_OR_RETURN(model::ShapeParams params, model::find_shape(kShape));
  LOUPE_ASSIGN_OR_RETURN(model::SynthSpec spec, model::build_spec(params));
  // The synthetic SentencePiece vocabulary, its last two pieces turned into ChatML's special
  // tokens, and ChatML as the chat template: the model then renders and tokenizes a
  // conversation the way a real chat model does.
  model::VocabSource vocab = model::synthetic_spm_vocab(spec.n_vocab);
  for (gguf::KeyValue& kv : vocab.tokenizer) {
    if (kv.key != "tokenizer.ggml.tokens" && kv.key != "tokenizer.ggml.token_type") continue;
    std::vector<gguf::Value> items = kv.value.array();
    const size_t n = items.size();
    if (kv.key == "tokenizer.ggml.tokens") {
      items[n - 2] = gguf::Value::str("<|im_start|>");
      items[n - 1] = gguf::Value::str("<|im_end|>");
    } else {
      items[n - 2] = gguf::Value::i32(kTokenTypeControl);
      items[n - 1] = gguf::Value::i32(kTokenTypeControl);
    }
    kv.value = gguf::Value::make_array(kv.value.array_type(), std::move(items));
  }
  vocab.tokenizer.push_back(
      {"tokenizer.chat_template", gguf::Value::str(engine::chatml_template())});
  ThreadPool pool(opt_.threads > 0 ? opt_.threads : ThreadPool::default_threads());
  return model::synthesize(spec, model::FileType::kQ8_0, kSeed, &vocab, path, pool);
}

Status Demo::inspect(const std::string& path) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) return make_error(ErrorCode::kInternal, "fork failed");
  if (pid == 0) {
    const char* argv[] = {"loupe", "inspect", path.c_str(), nullptr};
    execv("/proc/self/exe", const_cast<char* const*>(argv));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return make_error(ErrorCode::kInternal, "`loupe inspect {}` failed", path);
  return Status();
}

int Demo::run() {
  const auto t_start = std::chrono::steady_clock::now();
  say(bold("Loupe demo") +
      " - a lab bench for local language models. Nothing to download: we build a small model\n"
      "right here, then look inside it the way you would look at a real one.\n");
  if (!interactive_) say(dim("(no terminal on stdin: running straight through)\n"));

  std::string dir;
  std::string path = opt_.keep_model;
  if (path.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "loupe-demo-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr)
      return report(make_error(ErrorCode::kIo, "cannot create a temporary directory in {}",
                               std::filesystem::temp_directory_path().string()));
    dir = tmpl;
    path = dir + "/" + kShape + ".q8_0.gguf";
  }
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir};

  // ---- 0. a model
  step(1, "A model file");
  say(fmt::format(
      "Synthesizing `{}`: the shape of Karpathy's TinyStories 15M model (6 layers, 288 wide,\n"
      "32000-token vocabulary) with {} weights, quantized to Q8_0, plus a ChatML chat template.\n",
      kShape, bold("random")));
  const auto t0 = std::chrono::steady_clock::now();
  if (Status st = synthesize(path); !st.ok()) return report(st);
  say(dim(fmt::format(
      "   wrote {} in {:.1f} s  (like: loupe synth --shape {} --type q8_0 -o FILE)\n", path,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), kShape)));
  pause();
  if (quit_) return kExitOk;

  // ---- 1. inspect
  step(2, "What is in the file: loupe inspect");
  say("A GGUF file holds metadata (architecture, sizes, tokenizer, chat template) and "
      "tensors.\n\n");
  if (Status st = inspect(path); !st.ok()) return report(st);
  pause();
  if (quit_) return kExitOk;

  auto model = engine::Model::load(path);
  if (!model) return report(model.status());
  const tokenizer::Tokenizer& tok = (*model)->tokenizer();
  runtime::RunParams rp;
  rp.n_threads = opt_.threads;
  rp.n_ctx = 256;
  auto gen = engine::Generator::create(**model, rp);
  if (!gen) return report(gen.status());

  // ---- 2. the prompt
  step(3, "What the model actually sees: the rendered prompt");
  const std::vector<engine::Message> messages = {{"system", "You are a helpful assistant."},
                                                 {"user", "What is a loupe?"}};
  say("A chat is a list of messages:\n"
      "   system: You are a helpful assistant.\n   user:   What is a loupe?\n"
      "The model's chat template (Jinja, stored in the file) turns them into one string, and the\n"
      "tokenizer turns that into token ids. Special tokens such as <|im_start|> are single "
      "ids:\n\n");
  auto format = engine::chat_format(**model, false);
  auto prompt_text = engine::render_chat(**model, *format, messages, true);
  if (!prompt_text) return report(prompt_text.status());
  say(*prompt_text + "\n");
  const std::vector<int32_t> prompt = (*model)->tokenize_prompt(*prompt_text, true);
  say(dim(fmt::format("   {} tokens; the first ones:\n", prompt.size())));
  say(token_lines(tok, std::span<const int32_t>(prompt).first(std::min<size_t>(8, prompt.size())),
                  /*show_special=*/true));
  say(dim(
      "   (see it for any model: loupe run -m MODEL -p TEXT --show-prompt, or loupe template)\n"));
  pause();
  if (quit_) return kExitOk;

  // ---- 3. generation with probabilities
  step(4, "Generation, token by token, with probabilities");
  say("At every step the model scores all 32000 tokens; softmax turns the scores into\n"
      "probabilities, and a sampler picks one. Greedy decoding (temperature 0) takes the most\n"
      "likely. Each line: the token chosen, its probability, the entropy H of the distribution\n"
      "(in nats), and the top alternatives:\n\n");
  engine::GenerateRequest req;
  req.prompt = prompt;
  req.n_predict = 8;
  req.sampler.temp = 0.0f;
  req.sampler.seed = 42;
  req.n_logprobs = 3;
  auto greedy = (*gen)->generate(req, [&](const engine::TokenEvent& ev) {
    if (ev.logprobs != nullptr) say(alternatives_line(tok, *ev.logprobs, color_) + "\n");
    return true;
  });
  if (!greedy) return report(greedy.status());
  const double uniform = 1.0 / static_cast<double>(tok.n_vocab());
  say(fmt::format(
      "\nEvery probability is tiny and the entropy is near ln(32000) = {:.1f} nats: with random\n"
      "weights the model has learned nothing, so it spreads its bets almost evenly (1/32000 =\n"
      "{:.4f}%). A trained model is sharply peaked: often 50-99% on one token.\n",
      std::log(static_cast<double>(tok.n_vocab())), 100.0 * uniform));
  say(dim(fmt::format(
      "   {}\n   (for any model: loupe run -m MODEL -p TEXT --logprobs 5 --show-alternatives)\n",
      stats_line(*greedy))));
  pause();
  if (quit_) return kExitOk;

  // ---- 4. temperature
  step(5, "The effect of temperature");
  say("Temperature divides the scores before softmax: near 0 the top token takes everything\n"
      "(greedy, the same text every time); 1.0 samples the model's own distribution; higher\n"
      "flattens it further. Same prompt, same seed (42), 16 tokens each:\n\n");
  for (float temp : {0.0f, 1.0f, 1.5f}) {
    req.n_predict = 16;
    req.sampler = {};
    req.sampler.temp = temp;
    req.sampler.seed = 42;
    req.sampler.top_k = 0;
    req.sampler.top_p = 1.0f;
    req.sampler.min_p = 0.0f;
    req.n_logprobs = 0;
    auto r = (*gen)->generate(req);
    if (!r) return report(r.status());
    double mean_p = 0;
    for (const auto& lp : r->logprobs) mean_p += std::exp(lp.logprob);
    mean_p /= std::max<size_t>(1, r->logprobs.size());
    say(fmt::format("  temp {:<4} {}\n", temp, readable(r->text, false)));
    say(dim(fmt::format("            mean probability of the chosen tokens: {:.4f}%\n",
                        100.0 * mean_p)));
  }
  say("\nGreedy decoding of an untrained model gets stuck repeating itself. Run the demo again:\n"
      "temperature 0 gives the same text, and with a fixed --seed so does every setting, whatever\n"
      "the thread count. Random weights make the words nonsense either way.\n");
  pause();
  if (quit_) return kExitOk;

  // ---- the real thing
  step(6, "Now with a real model");
  say("Loupe reads GGUF files, the format llama.cpp and Ollama use. Download one, for example\n"
      "Qwen2.5-0.5B-Instruct (Q4_K_M, about 400 MB) from Hugging Face\n"
      "(https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF), then:\n\n"
      "  loupe inspect MODEL.gguf                       what is inside\n"
      "  loupe run -m MODEL.gguf -p \"Why is the sky blue?\" --logprobs 5\n"
      "                                                 one answer, coloured by probability\n"
      "  loupe chat -m MODEL.gguf                       a conversation (/help inside)\n\n");
  if (!opt_.keep_model.empty()) say(fmt::format("The demo model stays at {}.\n", opt_.keep_model));
  say(dim(fmt::format(
      "demo finished in {:.1f} s\n",
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count())));
  return kExitOk;
}

}  // namespace

void add_demo(CLI::App& app) {
  auto opt = std::make_shared<DemoOptions>();
  CLI::App* c = app.add_subcommand(
      "demo", "A guided tour on a model synthesized on the spot (no download, under a minute)");
  c->add_flag("-y,--yes", opt->yes, "Do not wait for Enter between steps");
  c->add_option("-t,--threads", opt->threads, "Threads (default: all cores)");
  c->add_option("--keep-model", opt->keep_model,
                "Write the demo model to this file and keep it (default: a temporary file)");
  c->callback([opt] { exit_status() = Demo(*opt).run(); });
}

}  // namespace loupe::cli
