#include "server/app.h"

#include <cstdio>
#include <ctime>

#include "base/sha256.h"

namespace loupe::server {

Expected<std::unique_ptr<ServedModel>> ServedModel::load(const std::string& path, std::string id,
                                                         const ServerOptions& opt) {
  std::unique_ptr<ServedModel> m(new ServedModel());
  m->path_ = path;
  m->id_ = std::move(id);
  LOUPE_ASSIGN_OR_RETURN(m->model_, engine::Model::load(path));
  m->format_ = *engine::chat_format(*m->model_, /*allow_fallback=*/true);
  const std::string& src = m->format_.source;
  m->template_hash_ = sha256_hex({reinterpret_cast<const uint8_t*>(src.data()), src.size()});
  LOUPE_ASSIGN_OR_RETURN(m->sha256_, m->model_->sha256());
  m->created_ = static_cast<int64_t>(std::time(nullptr));
  runtime::RunParams params;
  params.n_ctx = opt.n_ctx;
  params.n_threads = opt.threads;
  engine::SchedulerOptions so;
  so.n_parallel = opt.parallel;
  so.max_queue = opt.max_queue;
  so.run = params;
  LOUPE_ASSIGN_OR_RETURN(m->sched_, engine::Scheduler::create(*m->model_, so));
  m->pooling_ = engine::default_pooling(*m->model_);
  if (!opt.pooling.empty()) {
    LOUPE_ASSIGN_OR_RETURN(m->pooling_, engine::parse_pooling(opt.pooling));
  }
  m->embed_params_ = params;
  m->embed_params_.n_ctx = m->sched_->n_ctx();
  if (m->format_.fallback)
    std::fprintf(stderr,
                 "loupe serve: %s has no chat template: serving it with ChatML (responses say "
                 "\"chat_template\": \"chatml-fallback\")\n",
                 m->id_.c_str());
  return m;
}

int64_t ServedModel::n_ctx() const {
  return sched_->n_ctx();
}

Expected<engine::GenerateResult> ServedModel::generate(const engine::GenerateRequest& request,
                                                       const engine::TokenCallback& on_token) {
  return sched_->generate(request, on_token);
}

Expected<std::vector<float>> ServedModel::embed(std::span<const int32_t> tokens, bool normalize) {
  std::lock_guard<std::mutex> lock(embed_mutex_);
  if (!embed_session_) {
    LOUPE_ASSIGN_OR_RETURN(embed_session_,
                           runtime::Session::create(model_->weights(), embed_params_));
  }
  return engine::embed(*model_, *embed_session_, tokens, pooling_, normalize);
}

App::App(const ServerOptions& opt, std::vector<std::unique_ptr<ServedModel>> models,
         std::unique_ptr<store::Store> store)
    : opt_(opt), models_(std::move(models)), store_(std::move(store)) {}

ServedModel* App::find_model(const std::string& id, ApiError& error) const {
  for (const auto& m : models_)
    if (m->id() == id) return m.get();
  std::string have;
  for (const auto& m : models_) have += (have.empty() ? "'" : ", '") + m->id() + "'";
  error = {404, fmt::format("the model '{}' does not exist; this server has {}", id, have),
           "invalid_request_error", "model_not_found"};
  return nullptr;
}

ServedModel* App::model_for(const json& body, ApiError& error) const {
  if (!body.contains("model") || body["model"].is_null()) {
    if (models_.size() == 1) return models_.front().get();
    error = bad_request("'model' is required: this server has several models", "invalid_model");
    return nullptr;
  }
  if (!body["model"].is_string()) {
    error = bad_request("'model' must be a string", "invalid_model");
    return nullptr;
  }
  return find_model(body["model"].get<std::string>(), error);
}

int64_t App::record(const ServedModel& m, const Record& r) {
  if (!store_ || r.result == nullptr) return 0;
  const engine::GenerateResult& res = *r.result;
  store::Exchange ex;
  ex.messages = r.messages;
  ex.reply = r.reply;
  ex.model = m.id();
  ex.model_sha256 = m.sha256();
  ex.template_hash = m.template_hash();
  ex.sampler_json = dump(r.sampler);
  ex.seed = res.seed;
  ex.loupe_version = opt_.version;
  ex.timings_json = dump(json(res.timings.to_json()));
  ex.finish_reason = engine::finish_reason(res.stop_reason);
  ex.prompt_tokens = res.n_prompt;
  ex.completion_tokens = static_cast<int64_t>(res.tokens.size());
  auto id = store_->record(ex);
  if (!id) {
    std::fprintf(stderr, "loupe serve: could not store the exchange: %s\n",
                 id.status().message().c_str());
    return 0;
  }
  return *id;
}

std::optional<ApiError> App::check_limits(const ServedModel& m,
                                          const engine::GenerateRequest& gen) const {
  const int64_t n_ctx = m.n_ctx();
  if (static_cast<int64_t>(gen.prompt.size()) >= n_ctx)
    return ApiError{400,
                    fmt::format("the prompt is {} tokens, the context is {} tokens",
                                gen.prompt.size(), n_ctx),
                    "exceed_context_size_error", "context_length_exceeded"};
  if (gen.n_predict > opt_.max_tokens)
    return bad_request(fmt::format("max_tokens {} is over this server's limit of {} "
                                   "(--max-tokens)",
                                   gen.n_predict, opt_.max_tokens),
                       "invalid_value");
  return std::nullopt;
}

httplib::Server::HandlerResponse App::pre_route(const httplib::Request& req,
                                                httplib::Response& res) {
  using HR = httplib::Server::HandlerResponse;
  const std::string host = lower(host_without_port(req.get_header_value("Host")));
  std::string own = lower(opt_.host);
  if (own.find(':') != std::string::npos && own.front() != '[') own = "[" + own + "]";
  if (host != "127.0.0.1" && host != "localhost" && host != "[::1]" && host != own) {
    send_error(res, {421, "the Host header names neither this server nor a loopback name",
                     "invalid_request_error", "misdirected_request"});
    res.set_header("Connection", "close");
    return HR::Handled;
  }
  if (!opt_.cors_origin.empty()) {
    res.set_header("Access-Control-Allow-Origin", opt_.cors_origin);
    res.set_header("Vary", "Origin");
    if (req.method == "OPTIONS") {  // preflight: answered before authentication, as browsers
      res.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.set_header("Access-Control-Max-Age", "600");
      res.status = 204;
      return HR::Handled;
    }
  }
  // /health says only that the server is up: probes need no key.
  if (!opt_.api_key.empty() && req.path != "/health") {
    const std::string auth = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    const bool ok = auth.size() > prefix.size() && auth.compare(0, prefix.size(), prefix) == 0 &&
                    constant_time_equals(auth.substr(prefix.size()), opt_.api_key);
    if (!ok) {
      send_error(res, {401, "missing or wrong API key (Authorization: Bearer KEY)",
                       "invalid_request_error", "invalid_api_key"});
      res.set_header("Connection", "close");
      return HR::Handled;
    }
  }
  if (req.has_header("Content-Length")) {
    const std::string cl = req.get_header_value("Content-Length");
    unsigned long long n = 0;
    try {
      n = std::stoull(cl);
    } catch (...) {
      n = 0;
    }
    if (n > opt_.max_body) {
      send_error(res, {413,
                       fmt::format("request body of {} bytes is over the limit of {} "
                                   "(--max-body)",
                                   n, opt_.max_body),
                       "invalid_request_error", "body_too_large"});
      res.set_header("Connection", "close");
      return HR::Handled;
    }
  }
  return HR::Unhandled;
}

void App::install(httplib::Server& svr) {
  svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    return pre_route(req, res);
  });
  svr.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        ApiError e;
        e.status = res.status;
        switch (res.status) {
          case 404:
            e = {404, "no such route", "invalid_request_error", "not_found"};
            break;
          case 413:
            e = {413, "request body too large", "invalid_request_error", "body_too_large"};
            break;
          case 431:
            e = {431, "request headers too large", "invalid_request_error",
                 "headers_too_large"};
            break;
          default:
            e.message = fmt::format("HTTP error {}", res.status);
            e.type = res.status >= 500 ? "server_error" : "invalid_request_error";
        }
        send_error(res, e);
        return httplib::Server::HandlerResponse::Handled;
      }));
  svr.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        send_error(res, {500, what, "server_error", "internal_error"});
      });
  svr.set_payload_max_length(opt_.max_body);
  // Up, and what each model's scheduler is doing (needs no key: it names no content).
  svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    json models = json::array();
    for (const auto& m : models_) {
      const engine::Scheduler::Stats st = m->stats();
      models.push_back({{"id", m->id()},
                        {"parallel", m->parallel()},
                        {"n_ctx", m->n_ctx()},
                        {"active", st.active},
                        {"queued", st.queued},
                        {"steps", st.steps},
                        {"batched_tokens", st.batched_tokens}});
    }
    res.set_content(dump(json{{"status", "ok"}, {"models", std::move(models)}}),
                    "application/json");
  });
  install_openai(*this, svr);
  install_embeddings(*this, svr);
  install_ollama(*this, svr);
  install_lab(*this, svr);
}

}  // namespace loupe::server
