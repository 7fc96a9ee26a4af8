// `loupe serve`: the OpenAI-compatible HTTP API over one model, safe by default (loopback
// bind, Host check against DNS rebinding, optional bearer key, body limit, no CORS), with every
// exchange recorded in the session store before the response's last byte is sent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace loupe::server {

struct ServerOptions {
  std::vector<std::string> model_paths;  // -m, one or more
  std::vector<std::string> aliases;      // --alias, the i-th names the i-th model
  std::string host = "127.0.0.1";
  int port = 8080;
  int64_t n_ctx = 0;  // per slot
  int threads = 0;
  int parallel = 1;        // sequences decoded together per model (continuous batching)
  size_t max_queue = 64;   // requests waiting for a slot per model; more -> 503
  std::string api_key;     // empty: no authentication (loopback only)
  std::string cors_origin;  // empty: no CORS headers
  std::string data_dir;    // empty: store::default_data_dir()
  bool no_store = false;
  size_t max_body = 16u << 20;
  int64_t max_tokens = 1 << 20;  // largest max_tokens / num_predict a request may ask for
  std::string pooling;           // embeddings: mean|last|cls; empty: the model's own
  std::string version;  // loupe's version, recorded with each exchange
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(const std::string& host);
// The model id for a path: its file name without ".gguf".
std::string model_id_from_path(const std::string& path);
// Equal strings, in time that depends only on the lengths.
bool constant_time_equals(const std::string& a, const std::string& b);

// Checks the options, loads the model, opens the store, binds and serves until SIGINT/SIGTERM.
// Prints "loupe serve: listening on http://HOST:PORT" to stderr once accepting connections.
Status serve(const ServerOptions& options);

}  // namespace loupe::server
