#include "server/server.h"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "server/app.h"

namespace loupe::server {

bool is_loopback_host(const std::string& host) {
  const std::string h = lower(host);
  return h == "localhost" || h == "::1" || h == "[::1]" || h.rfind("127.", 0) == 0;
}

std::string model_id_from_path(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  const std::string ext = ".gguf";
  if (name.size() > ext.size() && lower(name.substr(name.size() - ext.size())) == ext)
    name.resize(name.size() - ext.size());
  return name;
}

bool constant_time_equals(const std::string& a, const std::string& b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

Expected<std::vector<std::string>> model_ids(const ServerOptions& opt) {
  if (opt.model_paths.empty())
    return make_error(ErrorCode::kInvalidArgument, "give at least one model with -m");
  if (opt.aliases.size() > opt.model_paths.size())
    return make_error(ErrorCode::kInvalidArgument,
                      "{} --alias for {} models: give at most one --alias per -m, in order",
                      opt.aliases.size(), opt.model_paths.size());
  std::vector<std::string> ids;
  for (size_t i = 0; i < opt.model_paths.size(); ++i) {
    std::string id = i < opt.aliases.size() && !opt.aliases[i].empty()
                         ? opt.aliases[i]
                         : model_id_from_path(opt.model_paths[i]);
    if (std::find(ids.begin(), ids.end(), id) != ids.end())
      return make_error(ErrorCode::kInvalidArgument,
                        "two models would both be called '{}': name one with --alias", id);
    ids.push_back(std::move(id));
  }
  return ids;
}

Status serve(const ServerOptions& opt) {
  if (!is_loopback_host(opt.host) && opt.api_key.empty())
    return make_error(ErrorCode::kInvalidArgument,
                      "--host {} is not a loopback address: anyone on the network could use the "
                      "model; give --api-key KEY too (or bind 127.0.0.1)",
                      opt.host);
  if (opt.port < 0 || opt.port > 65535)
    return make_error(ErrorCode::kInvalidArgument, "--port {} is not a TCP port", opt.port);
  if (opt.parallel < 1 || opt.parallel > 256)
    return make_error(ErrorCode::kInvalidArgument, "--parallel {} must be 1..256", opt.parallel);
  LOUPE_ASSIGN_OR_RETURN(std::vector<std::string> ids, model_ids(opt));

  // Signals go to one waiting thread, which stops the server; block them before any thread.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::vector<std::unique_ptr<ServedModel>> models;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto m = ServedModel::load(opt.model_paths[i], ids[i], opt);
    if (!m) return m.status().with_context(opt.model_paths[i]);
    std::fprintf(stderr, "loupe serve: model '%s' from %s\n", ids[i].c_str(),
                 opt.model_paths[i].c_str());
    models.push_back(std::move(*m));
  }
  std::unique_ptr<store::Store> st;
  if (!opt.no_store) {
    const std::string dir = opt.data_dir.empty() ? store::default_data_dir() : opt.data_dir;
    LOUPE_ASSIGN_OR_RETURN(st, store::Store::open(dir));
    std::fprintf(stderr, "loupe serve: storing sessions in %s\n", st->path().c_str());
  }
  App app(opt, std::move(models), std::move(st));
  httplib::Server svr;
  // Each connection holds a thread while its response streams: enough for every model's
  // slots and queue, and a few cheap requests beside them.
  const size_t threads = (static_cast<size_t>(opt.parallel) + opt.max_queue) * ids.size() + 8;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  app.install(svr);
  // --port 0: any free port (the line below names it), for tests and scripts.
  int port = opt.port;
  if (port == 0) {
    port = svr.bind_to_any_port(opt.host);
    if (port <= 0) port = -1;
  } else if (!svr.bind_to_port(opt.host, port)) {
    port = -1;
  }
  if (port < 0)
    return make_error(ErrorCode::kIo, "cannot listen on {}:{} (in use, or not an address here)",
                      opt.host, opt.port);
  std::thread waiter([&svr, sigs] {
    int sig = 0;
    sigwait(&sigs, &sig);
    svr.stop();
  });
  waiter.detach();
  std::fprintf(stderr, "loupe serve: listening on http://%s:%d\n", opt.host.c_str(), port);
  std::fflush(stderr);
  svr.listen_after_bind();
  return Status::ok_status();
}

}  // namespace loupe::server
