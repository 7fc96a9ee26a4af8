#include "server/server.h"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/sha256.h"
#include "engine/generator.h"
#include "engine/model.h"
#include "engine/prompt.h"
#include "sample/grammar.h"
#include "sample/json_schema.h"
#include "sample/logprobs.h"
#include "store/store.h"

namespace loupe::server {
namespace {

using json = nlohmann::ordered_json;

// An OpenAI-shaped error: {"error":{"message","type","code"}}.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string code;
};

json error_json(const ApiError& e) {
  json err = {{"message", e.message}, {"type", e.type}};
  err["code"] = e.code.empty() ? json(nullptr) : json(e.code);
  return json{{"error", std::move(err)}};
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(error_json(e).dump(), "application/json");
}

ApiError bad_request(std::string message, std::string code = "") {
  return {400, std::move(message), "invalid_request_error", std::move(code)};
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Host header without its port: "a:80" -> "a", "[::1]:80" -> "[::1]".
std::string host_without_port(const std::string& host) {
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    return close == std::string::npos ? host : host.substr(0, close + 1);
  }
  const size_t colon = host.find(':');
  if (colon != std::string::npos && host.find(':', colon + 1) == std::string::npos)
    return host.substr(0, colon);
  return host;
}

std::string random_hex(size_t n) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static const char* digits = "0123456789abcdef";
  std::string s(n, '0');
  for (char& c : s) c = digits[rng() % 16];
  return s;
}

// A float as its shortest decimal text reads (0.95f -> 0.95, not 0.949999988).
double shortest(float v) {
  return std::stod(fmt::format("{}", v));
}

json sampler_json(const sample::SamplerParams& p) {
  json j;
  j["temperature"] = shortest(p.temp);
  j["top_k"] = p.top_k;
  j["top_p"] = shortest(p.top_p);
  j["min_p"] = shortest(p.min_p);
  j["typ_p"] = shortest(p.typ_p);
  j["repeat_penalty"] = shortest(p.penalty_repeat);
  j["repeat_last_n"] = p.penalty_last_n;
  j["presence_penalty"] = shortest(p.penalty_present);
  j["frequency_penalty"] = shortest(p.penalty_freq);
  j["mirostat"] = p.mirostat;
  json bias = json::array();
  for (const auto& b : p.logit_bias)
    bias.push_back({b.token, std::isinf(b.bias) ? json("-inf") : json(shortest(b.bias))});
  j["logit_bias"] = std::move(bias);
  j["samplers"] = sample::sampler_order_string(p.samplers);
  return j;
}

// A parsed /v1/chat/completions request.
struct ChatRequest {
  std::vector<engine::Message> messages;
  engine::GenerateRequest gen;
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;
  std::string response_format = "text";
  bool text_completion = false;  // POST /v1/completions: `prompt` completed as raw text
  std::string prompt_text;
};

std::optional<ApiError> number_in(const json& body, const char* key, double lo, double hi,
                                  std::optional<double>& out) {
  if (!body.contains(key) || body[key].is_null()) return std::nullopt;
  if (!body[key].is_number())
    return bad_request(fmt::format("'{}' must be a number", key), "invalid_type");
  const double v = body[key].get<double>();
  if (v < lo || v > hi)
    return bad_request(fmt::format("'{}' is {}: it must be between {} and {}", key, v, lo, hi),
                       "invalid_value");
  out = v;
  return std::nullopt;
}

std::optional<ApiError> int_in(const json& body, const char* key, int64_t lo, int64_t hi,
                               std::optional<int64_t>& out) {
  if (!body.contains(key) || body[key].is_null()) return std::nullopt;
  if (!body[key].is_number_integer())
    return bad_request(fmt::format("'{}' must be an integer", key), "invalid_type");
  const int64_t v = body[key].get<int64_t>();
  if (v < lo || v > hi)
    return bad_request(fmt::format("'{}' is {}: it must be between {} and {}", key, v, lo, hi),
                       "invalid_value");
  out = v;
  return std::nullopt;
}

std::optional<ApiError> parse_content(const json& content, std::string& out) {
  if (content.is_null()) return std::nullopt;
  if (content.is_string()) {
    out = content.get<std::string>();
    return std::nullopt;
  }
  if (content.is_array()) {
    for (const auto& part : content) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
          !part["text"].is_string())
        return bad_request("only text content parts are supported", "unsupported_content");
      out += part["text"].get<std::string>();
    }
    return std::nullopt;
  }
  return bad_request("message content must be a string or an array of text parts",
                     "invalid_type");
}

std::optional<ApiError> parse_sampling(const json& body, int32_t n_vocab, ChatRequest& r);

std::optional<ApiError> parse_chat(const json& body, int32_t n_vocab, ChatRequest& r) {
  if (!body.is_object()) return bad_request("the request body must be a JSON object");
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
    return bad_request("'messages' must be a non-empty array", "invalid_messages");
  constexpr size_t kMaxMessages = 4096;
  if (body["messages"].size() > kMaxMessages)
    return bad_request(fmt::format("{} messages: at most {} are accepted",
                                   body["messages"].size(), kMaxMessages),
                       "too_many_messages");
  for (const auto& m : body["messages"]) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      return bad_request("each message needs a string 'role'", "invalid_messages");
    engine::Message msg;
    msg.role = m["role"].get<std::string>();
    if (msg.role == "developer") msg.role = "system";
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant" &&
        msg.role != "tool")
      return bad_request(fmt::format("unknown message role '{}'", msg.role), "invalid_messages");
    if (auto e = parse_content(m.contains("content") ? m["content"] : json(), msg.content))
      return e;
    r.messages.push_back(std::move(msg));
  }
  if (body.contains("tools") && body["tools"].is_array() && !body["tools"].empty())
    return bad_request("'tools' is not supported by this server yet", "unsupported_parameter");
  return parse_sampling(body, n_vocab, r);
}

// POST /v1/completions: `prompt` (a string) and the same sampling fields; `logprobs` is the
// number of alternatives (legacy shape).
std::optional<ApiError> parse_completion(json body, int32_t n_vocab, ChatRequest& r) {
  r.text_completion = true;
  if (!body.contains("prompt") || !body["prompt"].is_string())
    return bad_request("'prompt' must be a string", "invalid_prompt");
  r.prompt_text = body["prompt"].get<std::string>();
  std::optional<int64_t> k;
  if (auto e = int_in(body, "logprobs", 0, 20, k)) return e;
  body.erase("logprobs");
  body.erase("top_logprobs");
  if (auto e = parse_sampling(body, n_vocab, r)) return e;
  r.logprobs = k.has_value();
  r.gen.n_logprobs = k ? static_cast<int32_t>(*k) : -1;
  return std::nullopt;
}

std::optional<ApiError> parse_sampling(const json& body, int32_t n_vocab, ChatRequest& r) {
  sample::SamplerParams& sp = r.gen.sampler;
  std::optional<double> d;
  if (auto e = number_in(body, "temperature", 0.0, 2.0, d)) return e;
  if (d) sp.temp = static_cast<float>(*d);
  d.reset();
  if (auto e = number_in(body, "top_p", 0.0, 1.0, d)) return e;
  if (d) sp.top_p = static_cast<float>(*d);
  d.reset();
  if (auto e = number_in(body, "presence_penalty", -2.0, 2.0, d)) return e;
  if (d) sp.penalty_present = static_cast<float>(*d);
  d.reset();
  if (auto e = number_in(body, "frequency_penalty", -2.0, 2.0, d)) return e;
  if (d) sp.penalty_freq = static_cast<float>(*d);
  d.reset();
  if (auto e = number_in(body, "min_p", 0.0, 1.0, d)) return e;
  if (d) sp.min_p = static_cast<float>(*d);
  d.reset();
  if (auto e = number_in(body, "repeat_penalty", 0.0, 10.0, d)) return e;
  if (d) sp.penalty_repeat = static_cast<float>(*d);
  std::optional<int64_t> i;
  if (auto e = int_in(body, "top_k", 0, n_vocab, i)) return e;
  if (i) sp.top_k = static_cast<int32_t>(*i);
  i.reset();
  if (auto e = int_in(body, "repeat_last_n", -1, 1 << 30, i)) return e;
  if (i) sp.penalty_last_n = static_cast<int32_t>(*i);
  i.reset();
  if (auto e = int_in(body, "seed", INT64_MIN, INT64_MAX, i)) return e;
  if (i) sp.seed = static_cast<uint32_t>(*i);
  i.reset();
  if (auto e = int_in(body, "n", 1, 1, i)) return e;
  i.reset();
  if (auto e = int_in(body, "max_completion_tokens", 1, INT32_MAX, i)) return e;
  if (!i)
    if (auto e = int_in(body, "max_tokens", 1, INT32_MAX, i)) return e;
  r.gen.n_predict = i ? static_cast<int32_t>(*i) : -1;

  if (body.contains("stop") && !body["stop"].is_null()) {
    const json& s = body["stop"];
    if (s.is_string()) {
      r.gen.stop.push_back(s.get<std::string>());
    } else if (s.is_array() && s.size() <= 4) {
      for (const auto& x : s) {
        if (!x.is_string()) return bad_request("'stop' items must be strings", "invalid_type");
        r.gen.stop.push_back(x.get<std::string>());
      }
    } else {
      return bad_request("'stop' must be a string or an array of at most 4 strings",
                         "invalid_type");
    }
    for (const auto& x : r.gen.stop)
      if (x.empty()) return bad_request("'stop' strings must not be empty", "invalid_value");
  }
  if (body.contains("logit_bias") && !body["logit_bias"].is_null()) {
    if (!body["logit_bias"].is_object())
      return bad_request("'logit_bias' must be an object of token id -> bias", "invalid_type");
    for (const auto& [key, value] : body["logit_bias"].items()) {
      int64_t id = -1;
      try {
        size_t used = 0;
        id = std::stoll(key, &used);
        if (used != key.size()) id = -1;
      } catch (...) {
        id = -1;
      }
      if (id < 0 || id >= n_vocab)
        return bad_request(fmt::format("logit_bias: '{}' is not a token id of this model "
                                       "(0..{})", key, n_vocab - 1), "invalid_value");
      if (!value.is_number() || value.get<double>() < -100 || value.get<double>() > 100)
        return bad_request(fmt::format("logit_bias: the bias of {} must be -100..100", key),
                           "invalid_value");
      const double b = value.get<double>();
      sp.logit_bias.push_back({static_cast<int32_t>(id),
                               b <= -100 ? -INFINITY : static_cast<float>(b)});
    }
  }
  if (body.contains("logprobs") && !body["logprobs"].is_null()) {
    if (!body["logprobs"].is_boolean())
      return bad_request("'logprobs' must be a boolean", "invalid_type");
    r.logprobs = body["logprobs"].get<bool>();
  }
  i.reset();
  if (auto e = int_in(body, "top_logprobs", 0, 20, i)) return e;
  if (i && !r.logprobs)
    return bad_request("'top_logprobs' needs 'logprobs': true", "invalid_value");
  r.gen.n_logprobs = r.logprobs ? static_cast<int32_t>(i.value_or(0)) : -1;

  if (body.contains("stream") && !body["stream"].is_null()) {
    if (!body["stream"].is_boolean()) return bad_request("'stream' must be a boolean");
    r.stream = body["stream"].get<bool>();
  }
  if (body.contains("stream_options") && body["stream_options"].is_object())
    r.include_usage = body["stream_options"].value("include_usage", false);

  if (body.contains("response_format") && !body["response_format"].is_null()) {
    const json& rf = body["response_format"];
    const std::string type = rf.is_object() ? rf.value("type", "") : "";
    Expected<std::string> grammar = std::string();
    if (type == "text") {
    } else if (type == "json_object") {
      grammar = sample::json_value_to_grammar(
          json{{"type", "object"}, {"additionalProperties", true}});
    } else if (type == "json_schema") {
      if (!rf.contains("json_schema") || !rf["json_schema"].is_object() ||
          !rf["json_schema"].contains("schema"))
        return bad_request("response_format json_schema needs json_schema.schema",
                           "invalid_response_format");
      grammar = sample::json_value_to_grammar(rf["json_schema"]["schema"]);
    } else {
      return bad_request("response_format.type must be text, json_object or json_schema",
                         "invalid_response_format");
    }
    if (!grammar)
      return bad_request("response_format: " + grammar.status().message(),
                         "invalid_response_format");
    r.gen.grammar = *grammar;
    r.response_format = type;
    if (!r.gen.grammar.empty()) {
      auto parsed = sample::Grammar::parse(r.gen.grammar);
      if (!parsed) return bad_request("response_format: " + parsed.status().message());
    }
  }
  return std::nullopt;
}

class App {
 public:
  App(const ServerOptions& opt, std::unique_ptr<engine::Model> model,
      std::unique_ptr<engine::Generator> gen, std::unique_ptr<store::Store> store)
      : opt_(opt), model_(std::move(model)), gen_(std::move(gen)), store_(std::move(store)) {
    id_ = opt_.alias.empty() ? model_id_from_path(opt_.model_path) : opt_.alias;
    format_ = *engine::chat_format(*model_, /*allow_fallback=*/true);
    const std::string& src = format_.source;
    template_hash_ = sha256_hex({reinterpret_cast<const uint8_t*>(src.data()), src.size()});
    auto sha = model_->sha256();
    model_sha256_ = sha ? *sha : "";
    created_ = static_cast<int64_t>(std::time(nullptr));
    if (format_.fallback)
      std::fprintf(stderr,
                   "loupe serve: %s has no chat template: serving it with ChatML (responses say "
                   "\"chat_template\": \"chatml-fallback\")\n",
                   id_.c_str());
  }

  void install(httplib::Server& svr) {
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      return pre_route(req, res);
    });
    svr.set_error_handler(httplib::Server::HandlerWithResponse(
        [](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      ApiError e;
      e.status = res.status;
      switch (res.status) {
        case 404: e = {404, "no such route", "invalid_request_error", "not_found"}; break;
        case 413:
          e = {413, "request body too large", "invalid_request_error", "body_too_large"};
          break;
        default: e.message = fmt::format("HTTP error {}", res.status); e.type = "server_error";
      }
      send_error(res, e);
      return httplib::Server::HandlerResponse::Handled;
    }));
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                                 std::exception_ptr ep) {
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
    svr.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"status":"ok"})", "application/json");
    });
    svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      json m = {{"id", id_}, {"object", "model"}, {"created", created_}, {"owned_by", "loupe"}};
      json body = {{"object", "list"}, {"data", json::array({m})}};
      res.set_content(dump(body), "application/json");
    });
    svr.Post("/v1/chat/completions", [this](const httplib::Request& req,
                                            httplib::Response& res) { complete(req, res, false); });
    svr.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      complete(req, res, true);
    });
  }

 private:
  httplib::Server::HandlerResponse pre_route(const httplib::Request& req,
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
                                     "(--max-body)", n, opt_.max_body),
                         "invalid_request_error", "body_too_large"});
        res.set_header("Connection", "close");
        return HR::Handled;
      }
    }
    return HR::Unhandled;
  }

  json base_chunk(const std::string& id, bool text_completion) const {
    return json{{"id", id},
                {"object", text_completion ? "text_completion" : "chat.completion.chunk"},
                {"created", static_cast<int64_t>(std::time(nullptr))},
                {"model", id_},
                {"system_fingerprint", "loupe-" + opt_.version}};
  }

  json logprob_item(const sample::TokenLogprobs& lp) const {
    const auto& tok = model_->tokenizer();
    return json(sample::logprobs_to_json(
        lp, [&](int32_t id) { return tok.token_to_piece(id, /*special=*/true); }));
  }

  json usage_json(const engine::GenerateResult& r) const {
    return json{{"prompt_tokens", r.n_prompt},
                {"completion_tokens", static_cast<int64_t>(r.tokens.size())},
                {"total_tokens", r.n_prompt + static_cast<int64_t>(r.tokens.size())},
                {"prompt_tokens_details", {{"cached_tokens", r.timings.cache_n}}}};
  }

  json loupe_json(const engine::GenerateResult& r, int64_t conversation) const {
    json j = {{"chat_template", format_.fallback ? "chatml-fallback" : "model"},
              {"seed", r.seed},
              {"stop_reason", engine::stop_reason_name(r.stop_reason)}};
    j["conversation_id"] = conversation > 0 ? json(conversation) : json(nullptr);
    return j;
  }

  // Stores the exchange; returns the conversation id (0 without a store or on failure).
  int64_t record(const ChatRequest& cr, const engine::GenerateResult& r) {
    if (!store_) return 0;
    store::Exchange ex;
    if (cr.text_completion) {
      ex.messages.push_back({"prompt", cr.prompt_text});
      ex.reply = {"completion", r.text};
    } else {
      for (const auto& m : cr.messages) ex.messages.push_back({m.role, m.content});
      ex.reply = {"assistant", r.text};
    }
    ex.model = id_;
    ex.model_sha256 = model_sha256_;
    ex.template_hash = template_hash_;
    json s = sampler_json(cr.gen.sampler);
    s["n_predict"] = cr.gen.n_predict;
    s["stop"] = cr.gen.stop;
    s["response_format"] = cr.response_format;
    s["endpoint"] = cr.text_completion ? "/v1/completions" : "/v1/chat/completions";
    if (!cr.gen.grammar.empty()) s["grammar"] = cr.gen.grammar;
    ex.sampler_json = dump(s);
    ex.seed = r.seed;
    ex.loupe_version = opt_.version;
    ex.timings_json = dump(json(r.timings.to_json()));
    ex.finish_reason = engine::finish_reason(r.stop_reason);
    ex.prompt_tokens = r.n_prompt;
    ex.completion_tokens = static_cast<int64_t>(r.tokens.size());
    auto id = store_->record(ex);
    if (!id) {
      std::fprintf(stderr, "loupe serve: could not store the exchange: %s\n",
                   id.status().message().c_str());
      return 0;
    }
    return *id;
  }

  static ApiError engine_error(const Status& s) {
    if (s.code() == ErrorCode::kInvalidArgument || s.code() == ErrorCode::kOutOfRange)
      return bad_request(s.message());
    return {500, s.message(), "server_error", "internal_error"};
  }

  // Legacy completions logprobs: tokens, token_logprobs, top_logprobs [{token: logprob}].
  json legacy_logprobs(const std::vector<sample::TokenLogprobs>& lps) const {
    const auto& tok = model_->tokenizer();
    json tokens = json::array(), lp = json::array(), top = json::array(),
         offsets = json::array();
    int64_t offset = 0;
    for (const auto& l : lps) {
      const std::string piece = tok.token_to_piece(l.token, /*special=*/true);
      tokens.push_back(piece);
      lp.push_back(std::isfinite(l.logprob) ? l.logprob : -9999.0);
      json alts = json::object();
      for (const auto& a : l.top)
        alts[tok.token_to_piece(a.token, true)] = std::isfinite(a.logprob) ? a.logprob : -9999.0;
      top.push_back(std::move(alts));
      offsets.push_back(offset);
      offset += static_cast<int64_t>(piece.size());
    }
    return json{{"tokens", std::move(tokens)}, {"token_logprobs", std::move(lp)},
                {"top_logprobs", std::move(top)}, {"text_offset", std::move(offsets)}};
  }

  void complete(const httplib::Request& req, httplib::Response& res, bool text_completion) {
    json body;
    try {
      body = json::parse(req.body);
    } catch (const std::exception& e) {
      return send_error(res, bad_request(std::string("the body is not valid JSON: ") + e.what(),
                                         "invalid_json"));
    }
    if (!body.is_object()) return send_error(res, bad_request("the body must be a JSON object"));
    if (!body.contains("model") || !body["model"].is_string())
      return send_error(res, bad_request("'model' must be a string", "invalid_model"));
    if (body["model"].get<std::string>() != id_)
      return send_error(res, {404,
                              fmt::format("the model '{}' does not exist; this server has '{}'",
                                          body["model"].get<std::string>(), id_),
                              "invalid_request_error", "model_not_found"});
    auto cr = std::make_shared<ChatRequest>();
    const int32_t n_vocab = model_->tokenizer().n_vocab();
    if (text_completion) {
      if (auto e = parse_completion(body, n_vocab, *cr)) return send_error(res, *e);
      cr->gen.prompt = model_->tokenize_prompt(cr->prompt_text, /*parse_special=*/false);
    } else {
      if (auto e = parse_chat(body, n_vocab, *cr)) return send_error(res, *e);
      auto text = engine::render_chat(*model_, format_, cr->messages, true);
      if (!text) return send_error(res, bad_request("chat template: " + text.status().message()));
      cr->gen.prompt = model_->tokenize_prompt(*text, /*parse_special=*/true);
    }
    const int64_t n_ctx = gen_->n_ctx();
    if (static_cast<int64_t>(cr->gen.prompt.size()) >= n_ctx)
      return send_error(res, {400,
                              fmt::format("the prompt is {} tokens, the context is {} tokens",
                                          cr->gen.prompt.size(), n_ctx),
                              "exceed_context_size_error", "context_length_exceeded"});
    const std::string id = (text_completion ? "cmpl-" : "chatcmpl-") + random_hex(24);

    if (!cr->stream) {
      std::lock_guard<std::mutex> lock(gen_mutex_);
      auto r = gen_->generate(cr->gen);
      if (!r) return send_error(res, engine_error(r.status()));
      const int64_t conv = record(*cr, *r);  // committed before any byte is sent
      json choice = {{"index", 0}};
      if (text_completion)
        choice["text"] = r->text;
      else
        choice["message"] = {{"role", "assistant"}, {"content", r->text}};
      if (cr->logprobs && text_completion) {
        choice["logprobs"] = legacy_logprobs(r->logprobs);
      } else if (cr->logprobs) {
        json content = json::array();
        for (const auto& lp : r->logprobs) content.push_back(logprob_item(lp));
        choice["logprobs"] = {{"content", std::move(content)}, {"refusal", nullptr}};
      } else {
        choice["logprobs"] = nullptr;
      }
      choice["finish_reason"] = engine::finish_reason(r->stop_reason);
      json out = {{"id", id},
                  {"object", text_completion ? "text_completion" : "chat.completion"},
                  {"created", static_cast<int64_t>(std::time(nullptr))},
                  {"model", id_},
                  {"system_fingerprint", "loupe-" + opt_.version},
                  {"choices", json::array({std::move(choice)})},
                  {"usage", usage_json(*r)},
                  {"timings", json(r->timings.to_json())},
                  {"loupe", loupe_json(*r, conv)}};
      res.set_content(dump(out), "application/json");
      return;
    }

    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [this, cr, id](size_t, httplib::DataSink& sink) {
          auto send = [&](const json& j) {
            const std::string s = "data: " + dump(j) + "\n\n";
            return sink.write(s.data(), s.size());
          };
          std::lock_guard<std::mutex> lock(gen_mutex_);
          bool alive = true;
          if (!cr->text_completion) {
            json first = base_chunk(id, false);
            first["choices"] = json::array(
                {{{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}},
                  {"logprobs", nullptr}, {"finish_reason", nullptr}}});
            alive = send(first);
          }
          auto r = gen_->generate(cr->gen, [&](const engine::TokenEvent& ev) {
            if (!alive) return false;
            if (ev.text.empty() && ev.logprobs == nullptr) return true;
            json c = base_chunk(id, cr->text_completion);
            json choice = {{"index", 0}};
            if (cr->text_completion)
              choice["text"] = std::string(ev.text);
            else
              choice["delta"] = {{"content", std::string(ev.text)}};
            if (ev.logprobs != nullptr && cr->text_completion)
              choice["logprobs"] = legacy_logprobs({*ev.logprobs});
            else if (ev.logprobs != nullptr)
              choice["logprobs"] = {{"content", json::array({logprob_item(*ev.logprobs)})}};
            else
              choice["logprobs"] = nullptr;
            choice["finish_reason"] = nullptr;
            c["choices"] = json::array({std::move(choice)});
            alive = send(c);
            return alive;
          });
          if (!r) {
            send(error_json(engine_error(r.status())));
            sink.done();
            return true;
          }
          json last = base_chunk(id, cr->text_completion);
          json end = {{"index", 0}};
          if (cr->text_completion)
            end["text"] = "";
          else
            end["delta"] = json::object();
          end["logprobs"] = nullptr;
          end["finish_reason"] = engine::finish_reason(r->stop_reason);
          last["choices"] = json::array({std::move(end)});
          last["loupe"] = loupe_json(*r, 0);
          // Committed before the last byte ([DONE]) is sent.
          const int64_t conv = record(*cr, *r);
          last["loupe"]["conversation_id"] = conv > 0 ? json(conv) : json(nullptr);
          if (alive) alive = send(last);
          if (alive && cr->include_usage) {
            json u = base_chunk(id, cr->text_completion);
            u["choices"] = json::array();
            u["usage"] = usage_json(*r);
            alive = send(u);
          }
          if (alive) {
            static const char kDone[] = "data: [DONE]\n\n";
            sink.write(kDone, sizeof(kDone) - 1);
          }
          sink.done();
          return true;
        });
  }

  const ServerOptions& opt_;
  std::unique_ptr<engine::Model> model_;
  std::unique_ptr<engine::Generator> gen_;
  std::unique_ptr<store::Store> store_;
  std::mutex gen_mutex_;  // one generation at a time (this slice: no batching yet)
  std::string id_;
  engine::ChatFormat format_;
  std::string template_hash_;
  std::string model_sha256_;
  int64_t created_ = 0;
};

}  // namespace

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

Status serve(const ServerOptions& opt) {
  if (!is_loopback_host(opt.host) && opt.api_key.empty())
    return make_error(ErrorCode::kInvalidArgument,
                      "--host {} is not a loopback address: anyone on the network could use the "
                      "model; give --api-key KEY too (or bind 127.0.0.1)",
                      opt.host);
  if (opt.port < 0 || opt.port > 65535)
    return make_error(ErrorCode::kInvalidArgument, "--port {} is not a TCP port", opt.port);

  // Signals go to one waiting thread, which stops the server; block them before any thread.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  LOUPE_ASSIGN_OR_RETURN(auto model, engine::Model::load(opt.model_path));
  runtime::RunParams params;
  params.n_ctx = opt.n_ctx;
  params.n_threads = opt.threads;
  LOUPE_ASSIGN_OR_RETURN(auto gen, engine::Generator::create(*model, params));
  std::unique_ptr<store::Store> st;
  if (!opt.no_store) {
    const std::string dir = opt.data_dir.empty() ? store::default_data_dir() : opt.data_dir;
    LOUPE_ASSIGN_OR_RETURN(st, store::Store::open(dir));
    std::fprintf(stderr, "loupe serve: storing sessions in %s\n", st->path().c_str());
  }
  App app(opt, std::move(model), std::move(gen), std::move(st));
  httplib::Server svr;
  app.install(svr);
  if (!svr.bind_to_port(opt.host, opt.port))
    return make_error(ErrorCode::kIo, "cannot listen on {}:{} (in use, or not an address here)",
                      opt.host, opt.port);
  std::thread waiter([&svr, sigs] {
    int sig = 0;
    sigwait(&sigs, &sig);
    svr.stop();
  });
  waiter.detach();
  std::fprintf(stderr, "loupe serve: listening on http://%s:%d\n", opt.host.c_str(), opt.port);
  std::fflush(stderr);
  svr.listen_after_bind();
  return Status::ok_status();
}

}  // namespace loupe::server
