// Loupe's own lab endpoints (/loupe/v1/*): what a served model is and how it sees text.
// JSON in and out, OpenAI-shaped errors:
//   POST /loupe/v1/inspect     {model} -> file facts, quant mix, hyper-parameters, special
//                              tokens, chat template, context and memory estimate
//   POST /loupe/v1/template    {model, messages, add_generation_prompt?, tools?,
//                              chat_template_kwargs?} -> the rendered prompt and its tokens,
//                              as a chat request would see them
//   POST /loupe/v1/tokenize    {model, content, add_special?, parse_special?, with_pieces?}
//   POST /loupe/v1/detokenize  {model, tokens} -> {content}
// The tokenize/detokenize fields and defaults are llama-server's /tokenize and /detokenize.
#include <algorithm>
#include <map>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "gguf/file.h"
#include "model/hparams.h"
#include "server/app.h"

namespace loupe::server {
namespace {

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

// llama-server's piece: the text when it is valid UTF-8, else its bytes.
json piece_json(const std::string& piece) {
  if (valid_utf8(piece)) return piece;
  json bytes = json::array();
  for (char c : piece) bytes.push_back(static_cast<unsigned char>(c));
  return bytes;
}

json tokens_json(const engine::Model& model, const std::vector<int32_t>& ids, bool with_pieces) {
  if (!with_pieces) return ids;
  json a = json::array();
  for (int32_t id : ids)
    a.push_back({{"id", id}, {"piece", piece_json(model.tokenizer().token_to_piece(id, true))}});
  return a;
}

std::optional<ApiError> bool_in(const json& body, const char* key, bool& out) {
  if (!body.contains(key) || body[key].is_null()) return std::nullopt;
  if (!body[key].is_boolean())
    return bad_request(fmt::format("'{}' must be a boolean", key), "invalid_type");
  out = body[key].get<bool>();
  return std::nullopt;
}

json inspect_json(const App& app, const ServedModel& m) {
  const engine::Model& model = m.model();
  const model::Hparams& h = model.hparams();
  const gguf::File* file = model.weights().file.get();
  json j;
  j["model"] = m.id();
  j["path"] = m.path();
  j["sha256"] = m.sha256();
  j["architecture"] = h.arch;
  j["name"] = model.name();
  j["file_size"] = model.file_size();
  uint64_t tensor_bytes = 0;
  int64_t n_params = 0;
  json mix = json::array();
  if (file != nullptr) {
    const int64_t ftype = file->get_int_or("general.file_type", -1);
    j["file_type"] = ftype >= 0 ? json(ftype) : json(nullptr);
    std::map<std::string, std::pair<int64_t, uint64_t>> by_type;  // type -> (tensors, bytes)
    for (const gguf::TensorInfo& t : file->tensors()) {
      n_params += t.n_elements();
      tensor_bytes += t.n_bytes;
      auto& e = by_type[std::string(dtype_name(t.type))];
      e.first += 1;
      e.second += t.n_bytes;
    }
    std::vector<std::pair<std::string, std::pair<int64_t, uint64_t>>> sorted(by_type.begin(),
                                                                             by_type.end());
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto& a, const auto& b) { return a.second.second > b.second.second; });
    for (const auto& [type, e] : sorted)
      mix.push_back({{"type", type}, {"n_tensors", e.first}, {"bytes", e.second}});
  }
  j["n_params"] = n_params;
  j["tensor_bytes"] = tensor_bytes;
  j["bits_per_weight"] = n_params > 0 ? 8.0 * static_cast<double>(tensor_bytes) / n_params : 0.0;
  j["quant_mix"] = std::move(mix);

  auto uniform = [](const std::vector<int64_t>& v) -> json {
    if (!v.empty() && std::all_of(v.begin(), v.end(), [&](int64_t x) { return x == v[0]; }))
      return v[0];
    return v;
  };
  json hp = {{"n_ctx_train", h.n_ctx_train},
             {"n_embd", h.n_embd},
             {"n_layer", h.n_layer},
             {"n_vocab", h.n_vocab},
             {"n_head", uniform(h.n_head)},
             {"n_head_kv", uniform(h.n_head_kv)},
             {"n_ff", uniform(h.n_ff)},
             {"head_dim_k", h.head_dim_k},
             {"head_dim_v", h.head_dim_v},
             {"norm", h.norm_is_rms ? "rms" : "layer"},
             {"norm_eps", h.norm_eps},
             {"rope_dims", h.rope_dims},
             {"rope_freq_base", h.rope_freq_base},
             {"rope_scaling", h.rope_scaling.empty() ? "none" : h.rope_scaling}};
  if (h.sliding_window > 0) hp["sliding_window"] = h.sliding_window;
  if (h.attn_softcap > 0) hp["attn_softcap"] = h.attn_softcap;
  if (h.final_softcap > 0) hp["final_softcap"] = h.final_softcap;
  if (h.n_expert > 0) {
    hp["n_expert"] = h.n_expert;
    hp["n_expert_used"] = h.n_expert_used;
    hp["n_ff_expert"] = h.n_ff_expert;
    if (h.n_ff_shared_expert > 0) hp["n_ff_shared_expert"] = h.n_ff_shared_expert;
  }
  std::map<std::string, int> kinds;
  for (auto k : h.layer_kind) kinds[model::layer_kind_name(k)]++;
  hp["layer_kinds"] = kinds;
  j["hparams"] = std::move(hp);

  const tokenizer::Tokenizer& tok = model.tokenizer();
  json special = json::object();
  const std::pair<const char*, int32_t> roles[] = {
      {"bos", tok.bos()},     {"eos", tok.eos()},       {"eot", tok.eot()},
      {"eom", tok.eom()},     {"unk", tok.unknown()},   {"sep", tok.separator()},
      {"pad", tok.padding()}};
  for (const auto& [role, id] : roles)
    if (tok.valid(id)) special[role] = {{"id", id}, {"text", tok.token_text(id)}};
  json eog = json::array();
  for (int32_t id : tok.eog_ids()) eog.push_back({{"id", id}, {"text", tok.token_text(id)}});
  j["tokenizer"] = {{"model", tok.model_name()},
                    {"pre", tok.pre_name()},
                    {"n_vocab", tok.n_vocab()},
                    {"add_bos", tok.add_bos()},
                    {"add_eos", tok.add_eos()},
                    {"special", std::move(special)},
                    {"eog", std::move(eog)}};
  j["chat_template"] = {{"kind", m.format().fallback ? "chatml-fallback" : "model"},
                        {"sha256", m.template_hash()},
                        {"source", m.format().source}};
  // The served context: one slot's KV cache at F16, the server's default cache type.
  const model::MemoryEstimate mem = model::estimate_memory(h, tensor_bytes, m.n_ctx());
  j["context"] = {{"n_ctx", m.n_ctx()}, {"n_ctx_train", h.n_ctx_train}};
  j["memory"] = {{"n_ctx", m.n_ctx()},        {"cache_type", "f16"},
                 {"weights", mem.weights},    {"kv_cache", mem.kv_cache},
                 {"recurrent_state", mem.recurrent_state},
                 {"compute", mem.compute},    {"total", mem.total()}};
  j["pooling"] = engine::pooling_name(m.pooling());
  j["parallel"] = app.options().parallel;
  return j;
}

// Messages as /v1/chat/completions takes them (text content, OpenAI roles).
std::optional<ApiError> parse_messages(const json& body, std::vector<engine::Message>& out) {
  if (!body.contains("messages") || !body["messages"].is_array())
    return bad_request("'messages' must be an array", "invalid_messages");
  for (const auto& m : body["messages"]) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      return bad_request("each message needs a string 'role'", "invalid_messages");
    engine::Message msg;
    msg.role = m["role"].get<std::string>();
    if (msg.role == "developer") msg.role = "system";
    const json c = m.contains("content") ? m["content"] : json();
    if (c.is_string()) {
      msg.content = c.get<std::string>();
    } else if (c.is_array()) {
      for (const auto& part : c) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
            !part["text"].is_string())
          return bad_request("only text content parts are supported", "unsupported_content");
        msg.content += part["text"].get<std::string>();
      }
    } else if (!c.is_null()) {
      return bad_request("message content must be a string or an array of text parts",
                         "invalid_type");
    }
    out.push_back(std::move(msg));
  }
  return std::nullopt;
}

class Lab {
 public:
  explicit Lab(App& app) : app_(app) {}

  // Parses the body and finds its model; on failure sends the error and returns nullptr.
  ServedModel* begin(const httplib::Request& req, httplib::Response& res, json& body) const {
    ApiError err;
    std::optional<json> parsed = parse_body(req.body, err);
    if (!parsed) {
      send_error(res, err);
      return nullptr;
    }
    body = std::move(*parsed);
    ServedModel* m = app_.model_for(body, err);
    if (m == nullptr) send_error(res, err);
    return m;
  }

  void inspect(const httplib::Request& req, httplib::Response& res) const {
    json body;
    ServedModel* m = begin(req, res, body);
    if (m == nullptr) return;
    res.set_content(dump(inspect_json(app_, *m)), "application/json");
  }

  void chat_template(const httplib::Request& req, httplib::Response& res) const {
    json body;
    ServedModel* m = begin(req, res, body);
    if (m == nullptr) return;
    std::vector<engine::Message> messages;
    if (auto e = parse_messages(body, messages)) return send_error(res, *e);
    bool add_generation_prompt = true, with_pieces = true;
    if (auto e = bool_in(body, "add_generation_prompt", add_generation_prompt))
      return send_error(res, *e);
    if (auto e = bool_in(body, "with_pieces", with_pieces)) return send_error(res, *e);
    engine::ChatOptions options;
    if (body.contains("tools") && !body["tools"].is_null()) {
      if (!body["tools"].is_array())
        return send_error(res, bad_request("'tools' must be an array", "invalid_type"));
      options.tools = body["tools"];
    }
    if (body.contains("chat_template_kwargs") && !body["chat_template_kwargs"].is_null()) {
      if (!body["chat_template_kwargs"].is_object())
        return send_error(res, bad_request("'chat_template_kwargs' must be an object",
                                           "invalid_type"));
      options.kwargs = body["chat_template_kwargs"];
    }
    auto text = engine::render_chat(m->model(), m->format(), messages, add_generation_prompt,
                                    options);
    if (!text) return send_error(res, bad_request("chat template: " + text.status().message()));
    const std::vector<int32_t> ids = m->model().tokenize_prompt(*text, /*parse_special=*/true);
    json out = {{"prompt", *text},
                {"tokens", tokens_json(m->model(), ids, with_pieces)},
                {"n_tokens", ids.size()},
                {"chat_template", m->format().fallback ? "chatml-fallback" : "model"},
                {"template_sha256", m->template_hash()}};
    res.set_content(dump(out), "application/json");
  }

  void tokenize(const httplib::Request& req, httplib::Response& res) const {
    json body;
    ServedModel* m = begin(req, res, body);
    if (m == nullptr) return;
    if (!body.contains("content") || !body["content"].is_string())
      return send_error(res, bad_request("'content' must be a string", "invalid_content"));
    bool add_special = false, parse_special = true, with_pieces = false;
    if (auto e = bool_in(body, "add_special", add_special)) return send_error(res, *e);
    if (auto e = bool_in(body, "parse_special", parse_special)) return send_error(res, *e);
    if (auto e = bool_in(body, "with_pieces", with_pieces)) return send_error(res, *e);
    const std::vector<int32_t> ids = m->model().tokenizer().tokenize(
        body["content"].get<std::string>(), add_special, parse_special);
    res.set_content(dump(json{{"tokens", tokens_json(m->model(), ids, with_pieces)}}),
                    "application/json");
  }

  void detokenize(const httplib::Request& req, httplib::Response& res) const {
    json body;
    ServedModel* m = begin(req, res, body);
    if (m == nullptr) return;
    if (!body.contains("tokens") || !body["tokens"].is_array())
      return send_error(res, bad_request("'tokens' must be an array of token ids",
                                         "invalid_tokens"));
    const tokenizer::Tokenizer& tok = m->model().tokenizer();
    std::vector<int32_t> ids;
    for (size_t i = 0; i < body["tokens"].size(); ++i) {
      const json& t = body["tokens"][i];
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tok.n_vocab())
        return send_error(res, bad_request(fmt::format("tokens[{}] is not a token id of this "
                                                       "model (0..{})",
                                                       i, tok.n_vocab() - 1),
                                           "invalid_tokens"));
      ids.push_back(t.get<int32_t>());
    }
    // llama-server renders control tokens as their text and keeps a leading BOS.
    const std::string text = tok.detokenize(ids, /*remove_special=*/false,
                                            /*unparse_special=*/true);
    res.set_content(dump(json{{"content", text}}), "application/json");
  }

 private:
  App& app_;
};

}  // namespace

void install_lab(App& app, httplib::Server& svr) {
  auto lab = std::make_shared<Lab>(app);
  svr.Post("/loupe/v1/inspect", [lab](const httplib::Request& req, httplib::Response& res) {
    lab->inspect(req, res);
  });
  svr.Post("/loupe/v1/template", [lab](const httplib::Request& req, httplib::Response& res) {
    lab->chat_template(req, res);
  });
  svr.Post("/loupe/v1/tokenize", [lab](const httplib::Request& req, httplib::Response& res) {
    lab->tokenize(req, res);
  });
  svr.Post("/loupe/v1/detokenize", [lab](const httplib::Request& req, httplib::Response& res) {
    lab->detokenize(req, res);
  });
}

}  // namespace loupe::server
