// POST /v1/embeddings: OpenAI's embeddings API over the served models (engine/embed.h: the
// final normed hidden states, pooled per --pooling or the model's own pooling, L2-normalized).
#include <cstring>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "server/app.h"

namespace loupe::server {
namespace {

// OpenAI accepts at most 2048 inputs per request.
constexpr size_t kMaxInputs = 2048;

std::string base64(const uint8_t* p, size_t n) {
  static const char* kDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string s;
  s.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t b0 = p[i], b1 = i + 1 < n ? p[i + 1] : 0, b2 = i + 2 < n ? p[i + 2] : 0;
    const uint32_t v = (b0 << 16) | (b1 << 8) | b2;
    s += kDigits[(v >> 18) & 63];
    s += kDigits[(v >> 12) & 63];
    s += i + 1 < n ? kDigits[(v >> 6) & 63] : '=';
    s += i + 2 < n ? kDigits[v & 63] : '=';
  }
  return s;
}

// A list of token ids, each checked against the vocabulary.
std::optional<ApiError> token_list(const json& a, int32_t n_vocab, const std::string& where,
                                   std::vector<int32_t>& out) {
  if (a.empty()) return bad_request(fmt::format("{} is empty", where), "invalid_input");
  for (const auto& t : a) {
    if (!t.is_number_integer())
      return bad_request(fmt::format("{} must hold only token ids (integers)", where),
                         "invalid_input");
    const int64_t id = t.get<int64_t>();
    if (id < 0 || id >= n_vocab)
      return bad_request(fmt::format("{}: {} is not a token id of this model (0..{})", where, id,
                                     n_vocab - 1),
                         "invalid_input");
    out.push_back(static_cast<int32_t>(id));
  }
  return std::nullopt;
}

// `input`: a string, an array of strings, an array of token ids or an array of such arrays.
std::optional<ApiError> parse_input(const json& body, const engine::Model& model,
                                    std::vector<std::vector<int32_t>>& out) {
  if (!body.contains("input") || body["input"].is_null())
    return bad_request("'input' is required", "invalid_input");
  const json& in = body["input"];
  const int32_t n_vocab = model.tokenizer().n_vocab();
  auto text = [&](const json& s, const std::string& where) -> std::optional<ApiError> {
    const std::string t = s.get<std::string>();
    if (t.empty()) return bad_request(fmt::format("{} is an empty string", where), "invalid_input");
    out.push_back(model.tokenize_prompt(t, /*parse_special=*/false));
    return std::nullopt;
  };
  if (in.is_string()) return text(in, "'input'");
  const char* kShape =
      "'input' must be a string, an array of strings, an array of token ids or an array of "
      "arrays of token ids";
  if (!in.is_array()) return bad_request(kShape, "invalid_input");
  if (in.empty()) return bad_request("'input' is an empty array", "invalid_input");
  if (in.size() > kMaxInputs)
    return bad_request(fmt::format("'input' has {} items: at most {} are accepted", in.size(),
                                   kMaxInputs),
                       "invalid_input");
  if (in[0].is_number_integer()) {
    out.emplace_back();
    return token_list(in, n_vocab, "'input'", out.back());
  }
  for (size_t i = 0; i < in.size(); ++i) {
    const std::string where = fmt::format("'input[{}]'", i);
    if (in[i].is_string()) {
      if (auto e = text(in[i], where)) return e;
    } else if (in[i].is_array()) {
      out.emplace_back();
      if (auto e = token_list(in[i], n_vocab, where, out.back())) return e;
    } else {
      return bad_request(kShape, "invalid_input");
    }
  }
  return std::nullopt;
}

void embeddings(App& app, const httplib::Request& req, httplib::Response& res) {
  ApiError err;
  std::optional<json> parsed = parse_body(req.body, err);
  if (!parsed) return send_error(res, err);
  const json& body = *parsed;
  ServedModel* mp = app.model_for(body, err);
  if (mp == nullptr) return send_error(res, err);
  ServedModel& m = *mp;
  const int64_t n_embd = m.model().hparams().n_embd;

  std::string encoding = "float";
  if (body.contains("encoding_format") && !body["encoding_format"].is_null()) {
    if (!body["encoding_format"].is_string() ||
        (body["encoding_format"] != "float" && body["encoding_format"] != "base64"))
      return send_error(res, bad_request("'encoding_format' must be \"float\" or \"base64\"",
                                         "invalid_value"));
    encoding = body["encoding_format"].get<std::string>();
  }
  std::optional<int64_t> dims;
  if (auto e = int_in(body, "dimensions", 1, INT32_MAX, dims)) return send_error(res, *e);
  if (dims && *dims != n_embd)
    return send_error(res, bad_request(fmt::format("dimensions {} is not supported: this "
                                                   "model's embeddings have {} dimensions "
                                                   "(shortening is not supported)",
                                                   *dims, n_embd),
                                       "unsupported_parameter"));
  std::vector<std::vector<int32_t>> inputs;
  if (auto e = parse_input(body, m.model(), inputs)) return send_error(res, *e);
  for (size_t i = 0; i < inputs.size(); ++i)
    if (static_cast<int64_t>(inputs[i].size()) > m.n_ctx())
      return send_error(res, ApiError{400,
                                      fmt::format("input {} is {} tokens, the context is {} "
                                                  "tokens",
                                                  i, inputs[i].size(), m.n_ctx()),
                                      "invalid_request_error", "context_length_exceeded"});

  json data = json::array();
  int64_t n_tokens = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto v = m.embed(inputs[i], /*normalize=*/true);
    if (!v) return send_error(res, engine_error(v.status()));
    n_tokens += static_cast<int64_t>(inputs[i].size());
    json item = {{"object", "embedding"}, {"index", i}};
    if (encoding == "base64") {
      // Little-endian float32, as OpenAI's clients decode it (numpy frombuffer float32).
      item["embedding"] = base64(reinterpret_cast<const uint8_t*>(v->data()),
                                 v->size() * sizeof(float));
    } else {
      json vec = json::array();
      for (float x : *v) vec.push_back(shortest(x));
      item["embedding"] = std::move(vec);
    }
    data.push_back(std::move(item));
  }
  json out = {{"object", "list"},
              {"data", std::move(data)},
              {"model", m.id()},
              {"usage", {{"prompt_tokens", n_tokens}, {"total_tokens", n_tokens}}}};
  res.set_content(dump(out), "application/json");
}

}  // namespace

void install_embeddings(App& app, httplib::Server& svr) {
  svr.Post("/v1/embeddings", [&app](const httplib::Request& req, httplib::Response& res) {
    embeddings(app, req, res);
  });
}

}  // namespace loupe::server
