// The OpenAI API: GET /v1/models, POST /v1/chat/completions, POST /v1/completions.
#include <cmath>
#include <ctime>
#include <memory>
#include <optional>

#include "server/app.h"
#include "sample/grammar.h"
#include "sample/json_schema.h"
#include "sample/logprobs.h"

namespace loupe::server {
namespace {

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

class OpenAi {
 public:
  explicit OpenAi(App& app) : app_(app) {}

  json base_chunk(const ServedModel& m, const std::string& id, bool text_completion) const {
    return json{{"id", id},
                {"object", text_completion ? "text_completion" : "chat.completion.chunk"},
                {"created", static_cast<int64_t>(std::time(nullptr))},
                {"model", m.id()},
                {"system_fingerprint", "loupe-" + app_.options().version}};
  }

  static json logprob_item(const ServedModel& m, const sample::TokenLogprobs& lp) {
    const auto& tok = m.model().tokenizer();
    return json(sample::logprobs_to_json(
        lp, [&](int32_t id) { return tok.token_to_piece(id, /*special=*/true); }));
  }

  static json usage_json(const engine::GenerateResult& r) {
    return json{{"prompt_tokens", r.n_prompt},
                {"completion_tokens", static_cast<int64_t>(r.tokens.size())},
                {"total_tokens", r.n_prompt + static_cast<int64_t>(r.tokens.size())},
                {"prompt_tokens_details", {{"cached_tokens", r.timings.cache_n}}}};
  }

  static json loupe_json(const ServedModel& m, const engine::GenerateResult& r,
                         int64_t conversation) {
    json j = {{"chat_template", m.format().fallback ? "chatml-fallback" : "model"},
              {"seed", r.seed},
              {"stop_reason", engine::stop_reason_name(r.stop_reason)}};
    j["conversation_id"] = conversation > 0 ? json(conversation) : json(nullptr);
    return j;
  }

  // Legacy completions logprobs: tokens, token_logprobs, top_logprobs [{token: logprob}].
  static json legacy_logprobs(const ServedModel& m,
                              const std::vector<sample::TokenLogprobs>& lps) {
    const auto& tok = m.model().tokenizer();
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

  int64_t record(const ServedModel& m, const ChatRequest& cr, const engine::GenerateResult& r) {
    App::Record rec;
    if (cr.text_completion) {
      rec.messages.push_back({"prompt", cr.prompt_text});
      rec.reply = {"completion", r.text};
    } else {
      for (const auto& msg : cr.messages) rec.messages.push_back({msg.role, msg.content});
      rec.reply = {"assistant", r.text};
    }
    rec.sampler = sampler_json(cr.gen.sampler);
    rec.sampler["n_predict"] = cr.gen.n_predict;
    rec.sampler["stop"] = cr.gen.stop;
    rec.sampler["response_format"] = cr.response_format;
    rec.sampler["endpoint"] = cr.text_completion ? "/v1/completions" : "/v1/chat/completions";
    if (!cr.gen.grammar.empty()) rec.sampler["grammar"] = cr.gen.grammar;
    rec.result = &r;
    return app_.record(m, rec);
  }

  void complete(const httplib::Request& req, httplib::Response& res, bool text_completion) {
    ApiError err;
    std::optional<json> parsed = parse_body(req.body, err);
    if (!parsed) return send_error(res, err);
    const json& body = *parsed;
    if (!body.contains("model") || !body["model"].is_string())
      return send_error(res, bad_request("'model' must be a string", "invalid_model"));
    ServedModel* mp = app_.find_model(body["model"].get<std::string>(), err);
    if (mp == nullptr) return send_error(res, err);
    ServedModel& m = *mp;
    const engine::Model& model = m.model();
    auto cr = std::make_shared<ChatRequest>();
    const int32_t n_vocab = model.tokenizer().n_vocab();
    if (text_completion) {
      if (auto e = parse_completion(body, n_vocab, *cr)) return send_error(res, *e);
      cr->gen.prompt = model.tokenize_prompt(cr->prompt_text, /*parse_special=*/false);
    } else {
      if (auto e = parse_chat(body, n_vocab, *cr)) return send_error(res, *e);
      auto text = engine::render_chat(model, m.format(), cr->messages, true);
      if (!text) return send_error(res, bad_request("chat template: " + text.status().message()));
      cr->gen.prompt = model.tokenize_prompt(*text, /*parse_special=*/true);
    }
    if (auto e = app_.check_limits(m, cr->gen)) return send_error(res, *e);
    const std::string id = (text_completion ? "cmpl-" : "chatcmpl-") + random_hex(24);

    if (!cr->stream) {
      auto r = m.generate(cr->gen);
      if (!r) return send_error(res, engine_error(r.status()));
      const int64_t conv = record(m, *cr, *r);  // committed before any byte is sent
      json choice = {{"index", 0}};
      if (text_completion)
        choice["text"] = r->text;
      else
        choice["message"] = {{"role", "assistant"}, {"content", r->text}};
      if (cr->logprobs && text_completion) {
        choice["logprobs"] = legacy_logprobs(m, r->logprobs);
      } else if (cr->logprobs) {
        json content = json::array();
        for (const auto& lp : r->logprobs) content.push_back(logprob_item(m, lp));
        choice["logprobs"] = {{"content", std::move(content)}, {"refusal", nullptr}};
      } else {
        choice["logprobs"] = nullptr;
      }
      choice["finish_reason"] = engine::finish_reason(r->stop_reason);
      json out = {{"id", id},
                  {"object", text_completion ? "text_completion" : "chat.completion"},
                  {"created", static_cast<int64_t>(std::time(nullptr))},
                  {"model", m.id()},
                  {"system_fingerprint", "loupe-" + app_.options().version},
                  {"choices", json::array({std::move(choice)})},
                  {"usage", usage_json(*r)},
                  {"timings", json(r->timings.to_json())},
                  {"loupe", loupe_json(m, *r, conv)}};
      res.set_content(dump(out), "application/json");
      return;
    }

    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [this, &m, cr, id](size_t, httplib::DataSink& sink) {
          auto send = [&](const json& j) {
            const std::string s = "data: " + dump(j) + "\n\n";
            return sink.write(s.data(), s.size());
          };
          bool alive = true;
          if (!cr->text_completion) {
            json first = base_chunk(m, id, false);
            first["choices"] = json::array(
                {{{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}},
                  {"logprobs", nullptr}, {"finish_reason", nullptr}}});
            alive = send(first);
          }
          auto r = m.generate(cr->gen, [&](const engine::TokenEvent& ev) {
            if (!alive || !sink.is_writable()) return alive = false;
            if (ev.text.empty() && ev.logprobs == nullptr) return true;
            json c = base_chunk(m, id, cr->text_completion);
            json choice = {{"index", 0}};
            if (cr->text_completion)
              choice["text"] = std::string(ev.text);
            else
              choice["delta"] = {{"content", std::string(ev.text)}};
            if (ev.logprobs != nullptr && cr->text_completion)
              choice["logprobs"] = legacy_logprobs(m, {*ev.logprobs});
            else if (ev.logprobs != nullptr)
              choice["logprobs"] = {{"content", json::array({logprob_item(m, *ev.logprobs)})}};
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
          json last = base_chunk(m, id, cr->text_completion);
          json end = {{"index", 0}};
          if (cr->text_completion)
            end["text"] = "";
          else
            end["delta"] = json::object();
          end["logprobs"] = nullptr;
          end["finish_reason"] = engine::finish_reason(r->stop_reason);
          last["choices"] = json::array({std::move(end)});
          last["loupe"] = loupe_json(m, *r, 0);
          // Committed before the last byte ([DONE]) is sent.
          const int64_t conv = record(m, *cr, *r);
          last["loupe"]["conversation_id"] = conv > 0 ? json(conv) : json(nullptr);
          if (alive) alive = send(last);
          if (alive && cr->include_usage) {
            json u = base_chunk(m, id, cr->text_completion);
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

 private:
  App& app_;
};

}  // namespace

void install_openai(App& app, httplib::Server& svr) {
  auto api = std::make_shared<OpenAi>(app);
  svr.Get("/v1/models", [&app](const httplib::Request&, httplib::Response& res) {
    json data = json::array();
    for (const auto& m : app.models())
      data.push_back(
          {{"id", m->id()}, {"object", "model"}, {"created", m->created()}, {"owned_by", "loupe"}});
    res.set_content(dump(json{{"object", "list"}, {"data", std::move(data)}}), "application/json");
  });
  svr.Post("/v1/chat/completions", [api](const httplib::Request& req, httplib::Response& res) {
    api->complete(req, res, false);
  });
  svr.Post("/v1/completions", [api](const httplib::Request& req, httplib::Response& res) {
    api->complete(req, res, true);
  });
}

}  // namespace loupe::server
