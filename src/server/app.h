// The state `loupe serve` shares across its routes: the served models (each with its own
// generation backend), the session store and the options. Routes live in their own files
// (openai.cpp, ollama.cpp, lab.cpp, embeddings.cpp) and register themselves through install_*.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/embed.h"
#include "engine/generator.h"
#include "engine/model.h"
#include "engine/prompt.h"
#include "engine/scheduler.h"
#include "server/common.h"
#include "server/server.h"
#include "store/store.h"

namespace loupe::server {

// One model the server answers for.
class ServedModel {
 public:
  static Expected<std::unique_ptr<ServedModel>> load(const std::string& path, std::string id,
                                                     const ServerOptions& opt);

  const std::string& id() const { return id_; }
  const std::string& path() const { return path_; }
  const engine::Model& model() const { return *model_; }
  const engine::ChatFormat& format() const { return format_; }
  const std::string& template_hash() const { return template_hash_; }
  const std::string& sha256() const { return sha256_; }
  int64_t created() const { return created_; }
  // Context size of one generation slot.
  int64_t n_ctx() const;

  // Thread-safe and blocking: queues one generation for a slot of the model's continuous
  // batch (kUnavailable when the queue is full); `on_token` runs on the calling thread.
  Expected<engine::GenerateResult> generate(const engine::GenerateRequest& request,
                                            const engine::TokenCallback& on_token = {});

  int parallel() const { return sched_->n_parallel(); }
  engine::Scheduler::Stats stats() const { return sched_->stats(); }

  // Embeddings: --pooling, else the model's own pooling.
  engine::Pooling pooling() const { return pooling_; }
  // Thread-safe and blocking: the pooled vector of `tokens` [n_embd], computed on a session
  // of its own (n_ctx() tokens, created on first use) so that embeddings never disturb the
  // generation cache.
  Expected<std::vector<float>> embed(std::span<const int32_t> tokens, bool normalize);

 private:
  ServedModel() = default;
  std::string id_, path_;
  std::unique_ptr<engine::Model> model_;
  engine::ChatFormat format_;
  std::string template_hash_, sha256_;
  int64_t created_ = 0;
  std::unique_ptr<engine::Scheduler> sched_;
  engine::Pooling pooling_ = engine::Pooling::kMean;
  runtime::RunParams embed_params_;
  std::unique_ptr<runtime::Session> embed_session_;  // guarded by embed_mutex_
  std::mutex embed_mutex_;
};

class App {
 public:
  App(const ServerOptions& opt, std::vector<std::unique_ptr<ServedModel>> models,
      std::unique_ptr<store::Store> store);

  void install(httplib::Server& svr);

  const ServerOptions& options() const { return opt_; }
  const std::vector<std::unique_ptr<ServedModel>>& models() const { return models_; }
  // The model with this id, or an error naming the ids this server has (404).
  ServedModel* find_model(const std::string& id, ApiError& error) const;
  // The model named by body["model"] (required when several are served; with one model an
  // absent field means that one).
  ServedModel* model_for(const json& body, ApiError& error) const;

  // One stored exchange: the request as sent, its reply and provenance.
  struct Record {
    std::vector<store::StoredMessage> messages;
    store::StoredMessage reply;
    json sampler;  // sampler_json(...) plus endpoint-specific settings
    const engine::GenerateResult* result = nullptr;
  };
  // Stores the exchange; returns the conversation id (0 without a store or on failure).
  int64_t record(const ServedModel& m, const Record& r);
  bool storing() const { return store_ != nullptr; }

  // Request limits before a generation is queued: a prompt that leaves no room in the
  // context (400 naming both numbers), max_tokens over --max-tokens.
  std::optional<ApiError> check_limits(const ServedModel& m,
                                       const engine::GenerateRequest& gen) const;

 private:
  httplib::Server::HandlerResponse pre_route(const httplib::Request& req,
                                             httplib::Response& res);

  const ServerOptions& opt_;
  std::vector<std::unique_ptr<ServedModel>> models_;
  std::unique_ptr<store::Store> store_;
};

// Route groups.
void install_openai(App& app, httplib::Server& svr);
void install_ollama(App& app, httplib::Server& svr);
void install_lab(App& app, httplib::Server& svr);
void install_embeddings(App& app, httplib::Server& svr);

}  // namespace loupe::server
