// A `loupe serve` child process on a free loopback port, for end-to-end tests over HTTP.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/testdata.h"
#include "gguf/file.h"
#include "gguf/writer.h"

namespace loupe::testing {

inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline std::string make_temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "loupe-serve-XXXXXX").string();
  const char* d = ::mkdtemp(tmpl.data());
  return d != nullptr ? std::string(d) : std::string();
}

// `loupe serve -m stories260K.gguf --port P --data DIR -t 1 EXTRA...`; killed (TERM, then
// KILL) when destroyed. `data` empty: a fresh temporary directory, removed afterwards.
class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> extra, std::string data = "") {
    data_ = data.empty() ? make_temp_dir() : data;
    owns_data_ = data.empty();
    port_ = free_port();
    std::vector<std::string> args = {LOUPE_BINARY, "serve", "-m",
                                     testdata_path("models/stories260K.gguf"),
                                     "--port", std::to_string(port_), "--data", data_, "-t", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    log_ = data_ + "/serve.log";
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess() {
    stop();
    std::error_code ec;
    if (owns_data_ && !data_.empty()) std::filesystem::remove_all(data_, ec);
  }

  // Waits (at most 20 s) until /health answers; false if the child died or never answered.
  bool wait_ready() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      httplib::Client c("127.0.0.1", port_);
      c.set_connection_timeout(1);
      if (auto r = c.Get("/health"); r && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // SIGKILL, as a crash would.
  void crash() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30);
    c.set_connection_timeout(5);
    return c;
  }
  std::string log() const {
    std::ifstream f(log_);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  const std::string& data() const { return data_; }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string data_, log_;
  bool owns_data_ = true;
};

// A fixture whose tests share one `loupe serve` child, started once per suite with
// Derived::server_args(); tests are skipped (by name) without the test data.
template <class Derived>
class SharedServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (testdata_dir().empty()) return;
    server_ = new ServerProcess(Derived::server_args());
    ready_ = server_->wait_ready();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    LOUPE_REQUIRE_TESTDATA();
    ASSERT_TRUE(ready_) << server_->log();
  }
  static httplib::Result post(const std::string& path, const nlohmann::json& body) {
    auto c = server_->client();
    return c.Post(path, body.dump(), "application/json");
  }

  inline static ServerProcess* server_ = nullptr;
  inline static bool ready_ = false;
};

// A copy of a models2026 file with a chat template from templates2026 (the tiny models carry
// none), written to `dir`; "" on failure.
inline std::string model_with_template(const std::string& model, const std::string& tmpl,
                                       const std::string& dir) {
  auto f = gguf::File::open(testdata_path(model));
  if (!f) return "";
  gguf::Writer w(f->alignment());
  for (const auto& kv : f->metadata()) w.set(kv.key, kv.value);
  std::ifstream in(testdata_path(tmpl), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  w.set("tokenizer.chat_template", gguf::Value::str(ss.str()));
  for (const auto& t : f->tensors())
    if (!w.add_tensor_bytes(t.name, t.type, t.ne, t.bytes()).ok()) return "";
  const std::string out = dir + "/model.gguf";
  return w.write(out).ok() ? out : "";
}

}  // namespace loupe::testing
