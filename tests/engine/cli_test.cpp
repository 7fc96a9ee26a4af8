// `loupe run`, `loupe chat` and `loupe demo` end to end through the binary; the chat REPL is
// driven through a pseudo-terminal like a person at a keyboard (Ctrl-C included).
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "common/process.h"
#include "common/testdata.h"

namespace loupe {
namespace {

using nlohmann::json;

std::string stories() {
  return testing::testdata_path("models/stories260K.gguf");
}

json parse_json(const testing::ProcessResult& r) {
  json j = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
  return j;
}

TEST(RunCli, JsonHasOpenAiLogprobsAndOurExtras) {
  LOUPE_REQUIRE_TESTDATA();
  auto r = testing::run_loupe({"run", "-m", stories(), "-p", "Once upon a time", "-n", "6",
                               "--seed", "3", "--temp", "0.9", "--logprobs", "4", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = parse_json(r);
  for (const char* key : {"tokens", "text", "finish_reason", "stop_reason", "seed",
                          "n_prompt_tokens", "settings", "logprobs", "timings"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["tokens"].size(), 6u);
  EXPECT_EQ(j["seed"], 3);
  EXPECT_EQ(j["finish_reason"], "length");
  EXPECT_EQ(j["settings"]["temperature"], 0.9);
  const json& content = j["logprobs"]["content"];
  ASSERT_EQ(content.size(), 6u);
  std::string joined;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& c = content[i];
    for (const char* key : {"token", "logprob", "bytes", "top_logprobs", "entropy", "post_prob"})
      EXPECT_TRUE(c.contains(key)) << key;
    EXPECT_EQ(c["id"], j["tokens"][i]);
    ASSERT_EQ(c["top_logprobs"].size(), 4u);
    for (size_t k = 1; k < 4; ++k)
      EXPECT_GE(c["top_logprobs"][k - 1]["logprob"].get<double>(),
                c["top_logprobs"][k]["logprob"].get<double>());
    joined += c["token"].get<std::string>();
  }
  EXPECT_EQ(joined, j["text"]);
  for (const char* key : {"prompt_n", "prompt_per_second", "predicted_n", "predicted_per_second"})
    EXPECT_TRUE(j["timings"].contains(key)) << key;
  EXPECT_NE(r.err.find("prefill"), std::string::npos) << r.err;  // the stats line
}

TEST(RunCli, EveryKeyButTimingsIsTheSameForAnyThreadCount) {
  LOUPE_REQUIRE_TESTDATA();
  std::optional<json> first;
  for (const char* threads : {"1", "2", "4"}) {
    auto r = testing::run_loupe({"run", "-m", stories(), "-p", "Once upon a time", "-n", "32",
                                 "--seed", "11", "--temp", "1.0", "--top-k", "0", "--logprobs", "3",
                                 "--json", "-t", threads});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json j = parse_json(r);
    j.erase("timings");
    if (!first)
      first = j;
    else
      EXPECT_EQ(j, *first) << threads << " threads";
  }
}

TEST(RunCli, StopStringsIgnoreEosAndTheShowPromptBlock) {
  LOUPE_REQUIRE_TESTDATA();
  auto r = testing::run_loupe({"run", "-m", stories(), "-p", "Once upon a time", "-n", "64",
                               "--temp", "0", "--stop", "Lily", "--show-prompt"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "--- prompt: 5 tokens ---\nOnce upon a time\n--- output ---\n"
            ", there was a little girl named \n");
  auto j = testing::run_loupe({"run", "-m", stories(), "-p", "Once upon a time", "-n", "64",
                               "--temp", "0", "--stop", "Lily", "--show-prompt", "--json"});
  json parsed = parse_json(j);
  EXPECT_EQ(parsed["prompt"], "Once upon a time");
  EXPECT_EQ(parsed["prompt_tokens"].size(), 5u);
  EXPECT_EQ(parsed["stop_string"], "Lily");
  EXPECT_EQ(parsed["finish_reason"], "stop");
  auto eos = testing::run_loupe({"run", "-m", stories(), "--tokens", "1,403", "-n", "5", "--temp",
                                 "0", "-l", "2+100", "--json"});
  EXPECT_EQ(parse_json(eos)["tokens"].size(), 0u);
  auto ignored = testing::run_loupe({"run", "-m", stories(), "--tokens", "1,403", "-n", "5",
                                     "--temp", "0", "-l", "2+100", "--ignore-eos", "--json"});
  EXPECT_EQ(parse_json(ignored)["tokens"].size(), 5u);
}

TEST(RunCli, ChatTemplateIsAppliedUnlessRaw) {
  LOUPE_REQUIRE_TESTDATA();
  // A tiny random model with Phi-3's vocabulary (and so its chat template).
  const std::string model = testing::temp_dir() + "/phi3.gguf";
  const std::string config = testing::temp_dir() + "/shape.json";
  std::ofstream(config) << R"({"arch":"llama","n_vocab":32064,"n_ctx":256,"n_embd":32,)"
                           R"("n_layer":1,"n_ff":64,"n_head":2})";
  auto synth =
      testing::run_loupe({"synth", "--config", config, "--type", "f32", "-o", model, "--vocab-from",
                          testing::testdata_path("vocab/ggml-vocab-phi-3.gguf")});
  ASSERT_EQ(synth.exit_code, 0) << synth.err;
  auto r = testing::run_loupe({"run", "-m", model, "-p", "Hello", "--system", "Be brief.", "-n",
                               "3", "--temp", "0", "--show-prompt", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = parse_json(r);
  const std::string prompt = j["prompt"];
  EXPECT_NE(prompt.find("<|user|>\nHello<|end|>"), std::string::npos) << prompt;
  EXPECT_TRUE(prompt.ends_with("<|assistant|>\n")) << prompt;  // Phi-3's template drops system
  EXPECT_EQ(r.err.find("no chat template"), std::string::npos) << r.err;
  auto raw = testing::run_loupe({"run", "-m", model, "-p", "Hello", "--raw", "-n", "3", "--temp",
                                 "0", "--show-prompt", "--json"});
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_EQ(parse_json(raw)["prompt"], "Hello");
}

TEST(RunCli, GrammarFlagsConstrainTheOutput) {
  LOUPE_REQUIRE_TESTDATA();
  const std::string schema =
      R"({"type":"object","properties":{"color":{"enum":["red","green","blue"]},"n":{"type":"integer"}},"required":["color","n"]})";
  auto r = testing::run_loupe(
      {"run", "-m", stories(), "-p", "Once", "-n", "40", "--seed", "4", "-j", schema, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json out = json::parse(parse_json(r)["text"].get<std::string>(), nullptr, false);
  ASSERT_FALSE(out.is_discarded()) << r.out;
  EXPECT_TRUE(out["n"].is_number_integer());
  const std::string file = testing::temp_dir() + "/s.json";
  std::ofstream(file) << schema;
  auto f = testing::run_loupe(
      {"run", "-m", stories(), "-p", "Once", "-n", "40", "--seed", "4", "-jf", file, "--json"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(parse_json(f)["text"], parse_json(r)["text"]);
  auto g = testing::run_loupe({"run", "-m", stories(), "-p", "Once", "-n", "10", "--grammar",
                               R"(root ::= "yes" | "no")", "--temp", "0"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_TRUE(g.out == "yes\n" || g.out == "no\n") << g.out;
  // A budget too small for any valid output: a clear error and a non-zero exit.
  auto budget =
      testing::run_loupe({"run", "-m", stories(), "-p", "Once", "-n", "2", "--grammar",
                          R"(root ::= "a long and fixed sentence that needs many tokens")"});
  EXPECT_EQ(budget.exit_code, 1);
  EXPECT_NE(budget.err.find("error"), std::string::npos) << budget.err;
  auto both = testing::run_loupe(
      {"run", "-m", stories(), "-p", "x", "--grammar", "root ::= \"a\"", "-j", "{}"});
  EXPECT_NE(both.exit_code, 0);  // CLI11's usage error
}

TEST(DemoCli, RunsStraightThroughWithoutATerminal) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = testing::run_loupe({"demo"});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  for (const char* text : {"random", "loupe inspect", "<|im_start|>user", "temp 0", "temp 1",
                           "GGUF", "loupe run -m", "loupe chat -m"})
    EXPECT_NE(r.out.find(text), std::string::npos) << text;
  EXPECT_LT(seconds, 60.0);
}

// ---- the chat REPL through a pseudo-terminal

class Pty {
 public:
  explicit Pty(const std::vector<std::string>& args) {
    struct winsize ws = {};
    ws.ws_row = 50;
    ws.ws_col = 200;
    pid_ = forkpty(&fd_, nullptr, nullptr, &ws);
    if (pid_ == 0) {
      setenv("TERM", "dumb", 1);
      setenv("NO_COLOR", "1", 1);
      std::vector<char*> argv;
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~Pty() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  bool started() const { return pid_ > 0; }

  void send(const std::string& keys) {
    size_t done = 0;
    while (done < keys.size()) {
      ssize_t n = write(fd_, keys.data() + done, keys.size() - done);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }

  // Reads until `text` appears after `from` in everything read so far; false on timeout or EOF.
  bool wait_for(const std::string& text, size_t from = 0, double timeout_s = 30) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (all_.find(text, from) == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline || !read_some(100)) return false;
    }
    return true;
  }
  // Reads until at least `n` more bytes arrived after `from`.
  bool wait_bytes(size_t from, size_t n, double timeout_s = 30) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (all_.size() < from + n) {
      if (std::chrono::steady_clock::now() > deadline || !read_some(100)) return false;
    }
    return true;
  }
  int wait_exit() {
    while (read_some(100)) {
    }
    int status = 0;
    waitpid(pid_, &status, 0);
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  const std::string& output() const { return all_; }

 private:
  // False at EOF (the child closed the terminal).
  bool read_some(int timeout_ms) {
    pollfd p = {fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return true;
    char buf[4096];
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n <= 0) return false;
    all_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  pid_t pid_ = -1;
  bool exited_ = false;
  std::string all_;
};

TEST(ChatCli, DrivenThroughAPseudoTerminal) {
  LOUPE_REQUIRE_TESTDATA();
  const std::string save = testing::temp_dir() + "/chat.json";
  Pty pty({LOUPE_BINARY, "chat", "-m", stories(), "-n", "24", "-t", "2"});
  ASSERT_TRUE(pty.started());
  ASSERT_TRUE(pty.wait_for(">>> ")) << pty.output();
  size_t mark = pty.output().size();
  pty.send("/set temp 0\r");
  ASSERT_TRUE(pty.wait_for("[temp = 0]", mark)) << pty.output();

  mark = pty.output().size();
  pty.send("Once upon a time\r");
  ASSERT_TRUE(pty.wait_for("context ", mark)) << pty.output();
  ASSERT_TRUE(pty.wait_for(">>> ", mark)) << pty.output();
  EXPECT_NE(pty.output().find("/512]", mark), std::string::npos) << pty.output();

  mark = pty.output().size();
  pty.send("/show prompt\r");
  ASSERT_TRUE(pty.wait_for("--- end of prompt ---", mark)) << pty.output();
  EXPECT_NE(pty.output().find("<|im_start|>user\r\nOnce upon a time<|im_end|>", mark),
            std::string::npos)
      << pty.output().substr(mark);

  mark = pty.output().size();
  pty.send("/save " + save + "\r");
  ASSERT_TRUE(pty.wait_for("[saved 2 messages", mark)) << pty.output();
  std::ifstream in(save);
  json saved = json::parse(std::string(std::istreambuf_iterator<char>(in), {}), nullptr, false);
  ASSERT_FALSE(saved.is_discarded());
  EXPECT_EQ(saved["model"]["sha256"].get<std::string>().size(), 64u);
  EXPECT_TRUE(saved["loupe_version"].is_string());
  EXPECT_TRUE(saved["template"]["fallback"].get<bool>());
  EXPECT_EQ(saved["settings"]["temperature"], 0.0);
  EXPECT_TRUE(saved["seed"].is_number_integer());
  ASSERT_EQ(saved["messages"].size(), 2u);
  EXPECT_EQ(saved["messages"][0]["content"], "Once upon a time");
  EXPECT_EQ(saved["messages"][1]["role"], "assistant");

  mark = pty.output().size();
  pty.send("/clear\r");
  ASSERT_TRUE(pty.wait_for("[conversation cleared", mark)) << pty.output();
  mark = pty.output().size();
  pty.send("/load " + save + "\r");
  ASSERT_TRUE(pty.wait_for("[loaded 2 messages", mark)) << pty.output();
  mark = pty.output().size();
  pty.send("/show params\r");
  ASSERT_TRUE(pty.wait_for("\"temperature\": 0.0", mark)) << pty.output().substr(mark);

  mark = pty.output().size();
  pty.send("/bye\r");
  EXPECT_EQ(pty.wait_exit(), 0) << pty.output().substr(mark);
}

// Ctrl-C while the model writes stops the reply and keeps the chat. The slowest small model
// (a 152k vocabulary, one thread, 20 alternatives per token) makes a full-context reply last
// seconds, so the keystroke lands mid-reply.
TEST(ChatCli, CtrlCStopsTheReplyNotTheChat) {
  LOUPE_REQUIRE_TESTDATA();
  Pty pty({LOUPE_BINARY, "chat", "-m",
           testing::testdata_path("models/qwen2-bpe152k.F32-embQ4_0.gguf"), "-t", "1",
           "--ignore-eos", "--logprobs", "20"});
  ASSERT_TRUE(pty.started());
  ASSERT_TRUE(pty.wait_for(">>> ")) << pty.output();
  size_t mark = pty.output().size();
  pty.send("Tell me a long story\r");
  ASSERT_TRUE(pty.wait_for("Tell me a long story", mark)) << pty.output();
  ASSERT_TRUE(pty.wait_bytes(pty.output().find("Tell me a long story", mark) + 30, 8))
      << pty.output();
  pty.send("\x03");
  ASSERT_TRUE(pty.wait_for("[interrupted]", mark)) << pty.output().substr(mark);
  EXPECT_EQ(pty.output().find("context is full", mark), std::string::npos)
      << "the reply ended before Ctrl-C arrived: " << pty.output().substr(mark);
  ASSERT_TRUE(pty.wait_for(">>> ", pty.output().find("[interrupted]", mark))) << pty.output();
  // Still chatting: a command works, and Ctrl-C at the prompt only clears the line.
  mark = pty.output().size();
  pty.send("/show stats\r");
  ASSERT_TRUE(pty.wait_for("cancelled", mark)) << pty.output().substr(mark);
  mark = pty.output().size();
  pty.send("half a line\x03");
  ASSERT_TRUE(pty.wait_for("^C", mark)) << pty.output().substr(mark);
  mark = pty.output().size();
  pty.send("/bye\r");
  EXPECT_EQ(pty.wait_exit(), 0) << pty.output().substr(mark);
}

}  // namespace
}  // namespace loupe
