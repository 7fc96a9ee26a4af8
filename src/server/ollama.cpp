// The Ollama API (/api/*), in Ollama's wire format: NDJSON streams (application/x-ndjson, one
// JSON object per line, streaming on by default), durations in nanoseconds, created_at in
// RFC 3339 with nanoseconds, errors as {"error": "..."}. Field names and order follow Ollama's
// api/types.go; sampler defaults are Ollama's (api.DefaultOptions), not llama.cpp's.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "gguf/file.h"
#include "model/hparams.h"
#include "sample/grammar.h"
#include "sample/json_schema.h"
#include "sample/logprobs.h"
#include "server/app.h"

namespace loupe::server {
namespace {

using Clock = std::chrono::steady_clock;

// Ollama's error body: {"error": "..."}, with the status of the OpenAI-shaped error.
void send_ollama_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  if (e.retry_after > 0) res.set_header("Retry-After", std::to_string(e.retry_after));
  res.set_content(dump(json{{"error", e.message}}), "application/json");
}

// Go's time.RFC3339Nano in UTC: nanoseconds with trailing zeros trimmed.
std::string rfc3339_nano(std::chrono::system_clock::time_point t) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch());
  const std::time_t secs = static_cast<std::time_t>(ns.count() / 1000000000);
  int64_t frac = ns.count() % 1000000000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string s = date;
  if (frac > 0) {
    std::string digits = fmt::format("{:09d}", frac);
    while (!digits.empty() && digits.back() == '0') digits.pop_back();
    s += "." + digits;
  }
  return s + "Z";
}

std::string now_rfc3339() { return rfc3339_nano(std::chrono::system_clock::now()); }

int64_t ns_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

// Ollama names carry a tag ("name:tag"); a served id without one is "id:latest".
std::string ollama_name(const std::string& id) {
  return id.find(':') == std::string::npos ? id + ":latest" : id;
}

// Ollama's format.HumanNumber: 1.1B, 7B, 260K, 12.50M.
std::string human_number(uint64_t n) {
  const double v = static_cast<double>(n);
  if (n >= 1000000000ull) {
    const double b = v / 1e9;
    return b == std::floor(b) ? fmt::format("{:.0f}B", b) : fmt::format("{:.1f}B", b);
  }
  if (n >= 1000000ull) {
    const double m = v / 1e6;
    return m == std::floor(m) ? fmt::format("{:.0f}M", m) : fmt::format("{:.2f}M", m);
  }
  if (n >= 1000ull) return fmt::format("{:.0f}K", v / 1e3);
  return std::to_string(n);
}

// Ollama's names of general.file_type (fs/ggml FileType.String()).
std::string file_type_name(int64_t ftype) {
  static const std::map<int64_t, const char*> kNames = {
      {0, "F32"},      {1, "F16"},      {2, "Q4_0"},     {3, "Q4_1"},     {7, "Q8_0"},
      {8, "Q5_0"},     {9, "Q5_1"},     {10, "Q2_K"},    {11, "Q3_K_S"},  {12, "Q3_K_M"},
      {13, "Q3_K_L"},  {14, "Q4_K_S"},  {15, "Q4_K_M"},  {16, "Q5_K_S"},  {17, "Q5_K_M"},
      {18, "Q6_K"},    {19, "IQ2_XXS"}, {20, "IQ2_XS"},  {21, "Q2_K_S"},  {22, "IQ3_XS"},
      {23, "IQ3_XXS"}, {24, "IQ1_S"},   {25, "IQ4_NL"},  {26, "IQ3_S"},   {27, "IQ3_M"},
      {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"},  {31, "IQ1_M"},   {32, "BF16"},
      {36, "TQ1_0"},   {37, "TQ2_0"},   {38, "MXFP4"}};
  auto it = kNames.find(ftype & ~1024);  // 1024: LLAMA_FTYPE_GUESSED
  return it == kNames.end() ? "unknown" : it->second;
}

// Facts about a served model that /api/tags, /api/show and /api/ps report.
struct ModelFacts {
  std::string arch;
  uint64_t n_params = 0;
  uint64_t tensor_bytes = 0;
  std::string quantization_level;
};

ModelFacts model_facts(const ServedModel& m) {
  ModelFacts f;
  const gguf::File* file = m.model().weights().file.get();
  f.arch = m.model().hparams().arch;
  std::map<std::string, uint64_t> bytes_by_type;
  if (file != nullptr) {
    for (const gguf::TensorInfo& t : file->tensors()) {
      f.n_params += static_cast<uint64_t>(t.n_elements());
      f.tensor_bytes += t.n_bytes;
      bytes_by_type[std::string(dtype_name(t.type))] += t.n_bytes;
    }
    const int64_t ftype = file->get_int_or("general.file_type", -1);
    if (ftype >= 0) f.quantization_level = file_type_name(ftype);
  }
  // Files without general.file_type (llama2.c conversions): the type holding most bytes.
  if (f.quantization_level.empty() || f.quantization_level == "unknown") {
    uint64_t best = 0;
    for (const auto& [type, b] : bytes_by_type)
      if (b > best) {
        best = b;
        f.quantization_level = type;
      }
    for (char& c : f.quantization_level) c = static_cast<char>(std::toupper(c));
  }
  return f;
}

json details_json(const ModelFacts& f) {
  return json{{"parent_model", ""},
              {"format", "gguf"},
              {"family", f.arch},
              {"families", json::array({f.arch})},
              {"parameter_size", human_number(f.n_params)},
              {"quantization_level", f.quantization_level}};
}

// A GGUF metadata value as JSON; arrays longer than `max_items` become null (Ollama's
// non-verbose /api/show nulls the tokenizer's token, type and merge lists).
json gguf_value_json(const gguf::Value& v, size_t max_items) {
  if (v.is_string()) return *v.as_string();
  if (v.is_bool()) return v.as_bool().value_or(false);
  if (v.is_float()) {
    const double d = v.as_double().value_or(0.0);
    // A float32 as its shortest text (1e-05, not 9.999999747378752e-06), as Ollama prints it.
    return v.type() == gguf::ValueType::kFloat32 ? json(shortest(static_cast<float>(d))) : json(d);
  }
  if (v.is_integer()) {
    if (auto i = v.as_int()) return *i;
    if (auto u = v.as_uint()) return *u;
    return nullptr;
  }
  if (v.is_array()) {
    if (v.array().size() > max_items) return nullptr;
    json a = json::array();
    for (const gguf::Value& item : v.array()) a.push_back(gguf_value_json(item, max_items));
    return a;
  }
  return nullptr;
}

// One Ollama generation request, /api/chat or /api/generate.
struct OllamaRequest {
  bool chat = true;
  std::string model_name;  // as the client sent it: Ollama echoes it
  std::vector<engine::Message> messages;
  std::string prompt;  // /api/generate
  bool raw = false;
  bool stream = true;
  bool logprobs = false;
  std::string format;  // "", "json" or "schema"
  engine::ChatOptions chat_options;  // tools, think
  engine::ReplyFormat reply_format = engine::ReplyFormat::kPlain;
  bool thinking_open = false;  // the rendered prompt ends inside a reasoning block
  engine::GenerateRequest gen;
  Clock::time_point t_start;
};

// Splits the generated text into content, thinking and tool calls the way the template's
// family writes them (engine/chat_output.h), as /v1/chat/completions does. The parser reads
// the text of control tokens (<think>, <|channel|>, ...), which the generator's released text
// leaves out, so it decodes the tokens again with them.
class ReplySplitter {
 public:
  ReplySplitter(const engine::Model& model, const OllamaRequest& r)
      : tok_(model.tokenizer()),
        structured_(!r.raw && r.reply_format != engine::ReplyFormat::kPlain),
        tools_(!r.chat_options.tools.is_null()),
        format_(r.reply_format),
        thinking_open_(r.thinking_open),
        decoder_(model.tokenizer(), /*special=*/true),
        stream_(r.reply_format, r.thinking_open) {}

  // Streaming: the content and thinking decided by this token.
  engine::ReplyStream::Delta push(const engine::TokenEvent& ev) {
    if (!structured_) return {std::string(ev.text), ""};
    return stream_.push(ev.token >= 0 ? decoder_.push(ev.token) : std::string());
  }
  // Streaming: the rest, and the whole reply.
  engine::ParsedReply finish(const engine::GenerateResult& res, engine::ReplyStream::Delta* rest) {
    if (!structured_) {
      *rest = {};
      return {res.text, "", {}};
    }
    stream_.push(decoder_.flush());
    engine::ParsedReply p = stream_.finish(rest);
    if (!tools_) p.tool_calls.clear();
    return p;
  }
  // Not streaming: the whole reply, without a matched stop string and what follows.
  engine::ParsedReply whole(const engine::GenerateResult& res) const {
    if (!structured_) return {res.text, "", {}};
    std::string text;
    for (int32_t id : res.tokens) text += tok_.token_to_piece(id, /*special=*/true);
    if (res.stop_reason == engine::StopReason::kStopString && !res.stop_string.empty())
      if (const size_t at = text.find(res.stop_string); at != std::string::npos) text.resize(at);
    engine::ParsedReply p = engine::parse_reply(format_, text, thinking_open_);
    // Without tools, call-shaped text is not a call: the reply is shown as generated.
    if (!tools_ && !p.tool_calls.empty()) return {res.text, "", {}};
    return p;
  }

 private:
  const tokenizer::Tokenizer& tok_;
  bool structured_, tools_;
  engine::ReplyFormat format_;
  bool thinking_open_;
  tokenizer::StreamDecoder decoder_;
  engine::ReplyStream stream_;
};

// Ollama's tool calls: [{id, function: {index, name, arguments (an object)}}].
json tool_calls_json(const std::vector<engine::ToolCall>& calls) {
  json a = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    json args = json::parse(calls[i].arguments, nullptr, false);
    if (args.is_discarded()) args = json::object();
    a.push_back({{"id", calls[i].id},
                 {"function", {{"index", i}, {"name", calls[i].name}, {"arguments", args}}}});
  }
  return a;
}

json message_json(const std::string& content, const std::string& thinking,
                  const std::vector<engine::ToolCall>& calls) {
  json msg = {{"role", "assistant"}, {"content", content}};
  if (!thinking.empty()) msg["thinking"] = thinking;
  if (!calls.empty()) msg["tool_calls"] = tool_calls_json(calls);
  return msg;
}

// One message of an Ollama chat: {role, content, thinking?, tool_calls?, tool_name?,
// tool_call_id?, images?}.
std::optional<ApiError> parse_message(const json& msg, engine::Message& out) {
  if (!msg.is_object() || !msg.contains("role") || !msg["role"].is_string())
    return bad_request("each message needs a string 'role'");
  out.role = msg["role"].get<std::string>();
  if (out.role != "system" && out.role != "user" && out.role != "assistant" &&
      out.role != "tool")
    return bad_request(fmt::format("unknown message role '{}': use system, user, assistant or "
                                   "tool",
                                   out.role));
  auto str = [&](const char* key, std::string& field) -> std::optional<ApiError> {
    if (!msg.contains(key) || msg[key].is_null()) return std::nullopt;
    if (!msg[key].is_string()) return bad_request(fmt::format("message '{}' must be a string", key));
    field = msg[key].get<std::string>();
    return std::nullopt;
  };
  if (auto e = str("content", out.content)) return e;
  if (auto e = str("thinking", out.reasoning_content)) return e;
  if (auto e = str("tool_name", out.name)) return e;
  if (auto e = str("tool_call_id", out.tool_call_id)) return e;
  if (msg.contains("tool_calls") && !msg["tool_calls"].is_null()) {
    if (!msg["tool_calls"].is_array()) return bad_request("message 'tool_calls' must be an array");
    for (const auto& c : msg["tool_calls"]) {
      if (!c.is_object() || !c.contains("function") || !c["function"].is_object() ||
          !c["function"].contains("name") || !c["function"]["name"].is_string())
        return bad_request("each tool call needs function.name");
      engine::ToolCall call;
      call.name = c["function"]["name"].get<std::string>();
      if (c.contains("id") && c["id"].is_string()) call.id = c["id"].get<std::string>();
      const json args = c["function"].contains("arguments") ? c["function"]["arguments"]
                                                              : json::object();
      call.arguments = args.is_string() ? args.get<std::string>() : dump(args);
      out.tool_calls.push_back(std::move(call));
    }
  }
  return std::nullopt;
}

std::optional<ApiError> option_number(const json& o, const char* key, std::optional<double>& out) {
  if (!o.contains(key) || o[key].is_null()) return std::nullopt;
  if (!o[key].is_number())
    return bad_request(fmt::format("option \"{}\" must be a number", key), "invalid_type");
  out = o[key].get<double>();
  if (!std::isfinite(*out))
    return bad_request(fmt::format("option \"{}\" must be finite", key), "invalid_value");
  return std::nullopt;
}

// Ollama's `options`: the sampler fields over Ollama's defaults. Load-time options (num_ctx,
// num_gpu, num_thread, ...) cannot change a loaded model here and are ignored; a num_ctx other
// than the served context is said so in the log.
std::optional<ApiError> parse_options(const json& body, const ServedModel& m, OllamaRequest& r) {
  sample::SamplerParams& sp = r.gen.sampler;
  // api.DefaultOptions.
  sp.temp = 0.8f;
  sp.top_k = 40;
  sp.top_p = 0.9f;
  sp.min_p = 0.0f;
  sp.typ_p = 1.0f;
  sp.penalty_last_n = 64;
  sp.penalty_repeat = 1.1f;
  sp.penalty_present = 0.0f;
  sp.penalty_freq = 0.0f;
  r.gen.n_predict = -1;
  if (!body.contains("options") || body["options"].is_null()) return std::nullopt;
  const json& o = body["options"];
  if (!o.is_object()) return bad_request("'options' must be an object", "invalid_type");

  static const std::set<std::string> kIgnored = {
      "num_keep",  "num_batch", "num_gpu",  "main_gpu",  "use_mmap",  "use_mlock",
      "num_thread", "numa",     "low_vram", "vocab_only", "f16_kv",   "logits_all",
      "penalize_newline", "tfs_z", "num_gqa", "rope_frequency_base", "rope_frequency_scale"};
  static const std::set<std::string> kKnown = {
      "seed", "num_predict", "top_k", "top_p", "min_p", "typical_p", "repeat_last_n",
      "temperature", "repeat_penalty", "presence_penalty", "frequency_penalty", "mirostat",
      "mirostat_tau", "mirostat_eta", "stop", "num_ctx"};
  for (const auto& [key, value] : o.items())
    if (!kKnown.count(key) && !kIgnored.count(key))
      std::fprintf(stderr, "loupe serve: %s: ignoring unknown option \"%s\"\n",
                   r.chat ? "/api/chat" : "/api/generate", key.c_str());

  struct FloatField {
    const char* key;
    float* out;
  };
  const FloatField floats[] = {{"temperature", &sp.temp},
                               {"top_p", &sp.top_p},
                               {"min_p", &sp.min_p},
                               {"typical_p", &sp.typ_p},
                               {"repeat_penalty", &sp.penalty_repeat},
                               {"presence_penalty", &sp.penalty_present},
                               {"frequency_penalty", &sp.penalty_freq},
                               {"mirostat_tau", &sp.mirostat_tau},
                               {"mirostat_eta", &sp.mirostat_eta}};
  for (const FloatField& f : floats) {
    std::optional<double> d;
    if (auto e = option_number(o, f.key, d)) return e;
    if (d) *f.out = static_cast<float>(*d);
  }
  // Go truncates JSON numbers into its int fields; so do we.
  std::optional<double> d;
  if (auto e = option_number(o, "top_k", d)) return e;
  if (d) sp.top_k = static_cast<int32_t>(std::clamp(*d, -1.0, 1e9));
  d.reset();
  if (auto e = option_number(o, "repeat_last_n", d)) return e;
  if (d) sp.penalty_last_n = static_cast<int32_t>(std::clamp(*d, -1.0, 1e9));
  d.reset();
  if (auto e = option_number(o, "mirostat", d)) return e;
  if (d) {
    if (*d != 0 && *d != 1 && *d != 2)
      return bad_request("option \"mirostat\" must be 0, 1 or 2", "invalid_value");
    sp.mirostat = static_cast<int32_t>(*d);
  }
  d.reset();
  if (auto e = option_number(o, "seed", d)) return e;
  // -1 (Ollama's default) asks for a random seed.
  if (d && *d >= 0) sp.seed = static_cast<uint32_t>(static_cast<int64_t>(*d));
  d.reset();
  if (auto e = option_number(o, "num_predict", d)) return e;
  // -1: no limit; -2 (fill the context) is the same here, as is 0 in Ollama's runner.
  if (d && *d >= 1) r.gen.n_predict = static_cast<int32_t>(std::min(*d, 2147483647.0));
  d.reset();
  if (auto e = option_number(o, "num_ctx", d)) return e;
  if (d && static_cast<int64_t>(*d) != m.n_ctx())
    std::fprintf(stderr,
                 "loupe serve: %s: ignoring options.num_ctx %lld: '%s' is served with a context "
                 "of %lld tokens (set it with -c)\n",
                 r.chat ? "/api/chat" : "/api/generate", static_cast<long long>(*d),
                 m.id().c_str(), static_cast<long long>(m.n_ctx()));
  if (o.contains("stop") && !o["stop"].is_null()) {
    const json& s = o["stop"];
    if (s.is_string()) {
      r.gen.stop.push_back(s.get<std::string>());
    } else if (s.is_array()) {
      for (const auto& x : s) {
        if (!x.is_string())
          return bad_request("option \"stop\" must be an array of strings", "invalid_type");
        r.gen.stop.push_back(x.get<std::string>());
      }
    } else {
      return bad_request("option \"stop\" must be an array of strings", "invalid_type");
    }
    std::erase_if(r.gen.stop, [](const std::string& x) { return x.empty(); });
  }
  return std::nullopt;
}

// The fields /api/chat and /api/generate share: stream, format, logprobs, options.
std::optional<ApiError> parse_common(const json& body, const ServedModel& m, OllamaRequest& r) {
  if (body.contains("stream") && !body["stream"].is_null()) {
    if (!body["stream"].is_boolean()) return bad_request("'stream' must be a boolean");
    r.stream = body["stream"].get<bool>();
  }
  if (body.contains("format") && !body["format"].is_null()) {
    const json& f = body["format"];
    Expected<std::string> grammar = std::string();
    if (f.is_string() && f.get<std::string>().empty()) {
    } else if (f.is_string() && f.get<std::string>() == "json") {
      // Ollama's "json" grammar is llama.cpp's json.gbnf: a JSON object.
      grammar = sample::json_value_to_grammar(
          json{{"type", "object"}, {"additionalProperties", true}});
      r.format = "json";
    } else if (f.is_object()) {
      grammar = sample::json_value_to_grammar(f);
      r.format = "schema";
    } else {
      return bad_request("invalid format: expected \"json\" or a JSON schema object",
                         "invalid_format");
    }
    if (!grammar) return bad_request("format: " + grammar.status().message(), "invalid_format");
    r.gen.grammar = *grammar;
    if (!r.gen.grammar.empty()) {
      auto parsed = sample::Grammar::parse(r.gen.grammar);
      if (!parsed) return bad_request("format: " + parsed.status().message(), "invalid_format");
    }
  }
  if (body.contains("logprobs") && !body["logprobs"].is_null()) {
    if (!body["logprobs"].is_boolean()) return bad_request("'logprobs' must be a boolean");
    r.logprobs = body["logprobs"].get<bool>();
  }
  std::optional<int64_t> top;
  if (auto e = int_in(body, "top_logprobs", 0, 20, top)) return e;
  r.gen.n_logprobs = r.logprobs ? static_cast<int32_t>(top.value_or(0)) : -1;
  // think: the templates' own switches (Qwen3's enable_thinking, gpt-oss's reasoning_effort).
  if (body.contains("think") && !body["think"].is_null()) {
    if (body["think"].is_boolean())
      r.chat_options.kwargs["enable_thinking"] = body["think"].get<bool>();
    else if (body["think"].is_string())
      r.chat_options.kwargs["reasoning_effort"] = body["think"].get<std::string>();
    else
      return bad_request("'think' must be a boolean or \"low\", \"medium\", \"high\"");
  }
  // keep_alive, truncate and shift are accepted: models stay loaded for the server's life.
  return parse_options(body, m, r);
}

bool images_given(const json& j) {
  return j.contains("images") && j["images"].is_array() && !j["images"].empty();
}

ApiError no_images(const ServedModel& m) {
  return bad_request(fmt::format("\"{}\" does not support images: this server runs text models "
                                 "only",
                                 m.id()),
                     "unsupported_content");
}

class Ollama {
 public:
  explicit Ollama(App& app) : app_(app) {}

  // The model a request names in "model" (or the deprecated "name"): the served id, with or
  // without ":latest".
  ServedModel* find(const json& body, std::string& name, ApiError& err) const {
    const char* key = body.contains("model") ? "model" : "name";
    if (!body.contains(key) || !body[key].is_string() || body[key].get<std::string>().empty()) {
      err = bad_request("model is required", "invalid_model");
      return nullptr;
    }
    name = body[key].get<std::string>();
    for (const auto& m : app_.models())
      if (m->id() == name || ollama_name(m->id()) == name) return m.get();
    err = {404, fmt::format("model \"{}\" not found, try pulling it first", name),
           "invalid_request_error", "model_not_found"};
    return nullptr;
  }

  json metrics(const OllamaRequest& r, const engine::GenerateResult& res,
               Clock::time_point t_gen) const {
    return json{{"total_duration", ns_between(r.t_start, Clock::now())},
                {"load_duration", ns_between(r.t_start, t_gen)},
                {"prompt_eval_count", res.timings.prompt_n},
                {"prompt_eval_duration", static_cast<int64_t>(res.timings.prompt_ms * 1e6)},
                {"eval_count", static_cast<int64_t>(res.tokens.size())},
                {"eval_duration", static_cast<int64_t>(res.timings.predicted_ms * 1e6)}};
  }

  static json logprob_items(const ServedModel& m,
                            std::span<const sample::TokenLogprobs> lps) {
    const auto& tok = m.model().tokenizer();
    json a = json::array();
    for (const auto& lp : lps)
      a.push_back(json(sample::logprobs_to_json(
          lp, [&](int32_t id) { return tok.token_to_piece(id, /*special=*/true); })));
    return a;
  }

  // One streamed line: the text released by a token.
  json chunk(const ServedModel& m, const OllamaRequest& r, const engine::ParsedReply& part,
             const sample::TokenLogprobs* lp) const {
    json j = {{"model", r.model_name}, {"created_at", now_rfc3339()}};
    if (r.chat) {
      j["message"] = message_json(part.content, part.reasoning, part.tool_calls);
    } else {
      j["response"] = part.content;
      if (!part.reasoning.empty()) j["thinking"] = part.reasoning;
    }
    j["done"] = false;
    if (lp != nullptr) j["logprobs"] = logprob_items(m, {lp, 1});
    return j;
  }

  // The last line (or the whole non-streamed reply: then with all the text).
  // The last line, or with `reply` the whole non-streamed answer.
  json final_json(const ServedModel& m, const OllamaRequest& r, const engine::GenerateResult& res,
                  Clock::time_point t_gen, const engine::ParsedReply* reply) const {
    json j = {{"model", r.model_name}, {"created_at", now_rfc3339()}};
    const bool with_text = reply != nullptr;
    const std::string reason = engine::finish_reason(res.stop_reason);
    if (r.chat) {
      j["message"] = with_text ? message_json(reply->content, reply->reasoning, reply->tool_calls)
                               : message_json("", "", {});
      j["done_reason"] = reason;
      j["done"] = true;
    } else {
      j["response"] = with_text ? reply->content : "";
      if (with_text && !reply->reasoning.empty()) j["thinking"] = reply->reasoning;
      j["done"] = true;
      j["done_reason"] = reason;
      // The deprecated conversational memory: the prompt and reply tokens.
      if (!r.raw) {
        json ctx = r.gen.prompt;
        for (int32_t t : res.tokens) ctx.push_back(t);
        j["context"] = std::move(ctx);
      }
    }
    j.update(metrics(r, res, t_gen));
    if (with_text && r.logprobs) j["logprobs"] = logprob_items(m, res.logprobs);
    return j;
  }

  // The store's `extra`, as /v1/chat/completions writes it: what a message carried besides
  // its role and content.
  static std::string message_extra(const std::vector<engine::ToolCall>& calls,
                                   const std::string& reasoning,
                                   const std::string& tool_call_id = {},
                                   const std::string& name = {}) {
    json e = json::object();
    if (!calls.empty()) {
      json a = json::array();
      for (const auto& c : calls)
        a.push_back({{"id", c.id},
                     {"type", "function"},
                     {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
      e["tool_calls"] = std::move(a);
    }
    if (!tool_call_id.empty()) e["tool_call_id"] = tool_call_id;
    if (!name.empty()) e["name"] = name;
    if (!reasoning.empty()) e["reasoning_content"] = reasoning;
    return e.empty() ? std::string() : dump(e);
  }

  void record(const ServedModel& m, const OllamaRequest& r, const engine::GenerateResult& res,
              const engine::ParsedReply& reply) {
    App::Record rec;
    if (!r.chat && r.raw) {
      rec.messages.emplace_back("prompt", r.prompt);
      rec.reply = store::StoredMessage("completion", reply.content);
    } else {
      for (const auto& msg : r.messages)
        rec.messages.emplace_back(
            msg.role, msg.content,
            message_extra(msg.tool_calls, msg.reasoning_content, msg.tool_call_id, msg.name));
      rec.reply = store::StoredMessage("assistant", reply.content,
                                       message_extra(reply.tool_calls, reply.reasoning));
    }
    rec.sampler = sampler_json(r.gen.sampler);
    rec.sampler["n_predict"] = r.gen.n_predict;
    rec.sampler["stop"] = r.gen.stop;
    rec.sampler["format"] = r.format;
    rec.sampler["endpoint"] = r.chat ? "/api/chat" : "/api/generate";
    if (r.raw) rec.sampler["raw"] = true;
    if (!r.raw && r.reply_format != engine::ReplyFormat::kPlain)
      rec.sampler["reply_format"] = engine::reply_format_name(r.reply_format);
    if (!r.gen.grammar.empty()) rec.sampler["grammar"] = r.gen.grammar;
    rec.result = &res;
    app_.record(m, rec);
  }

  // The reply to a request with nothing to generate: Ollama loads (or, with keep_alive 0,
  // unloads) the model and says so.
  void load_only(httplib::Response& res, const OllamaRequest& r, const json& body) {
    const bool unload = body.contains("keep_alive") &&
                        ((body["keep_alive"].is_number() && body["keep_alive"].get<double>() == 0) ||
                         (body["keep_alive"].is_string() &&
                          (body["keep_alive"] == "0" || body["keep_alive"] == "0s")));
    json j = {{"model", r.model_name}, {"created_at", now_rfc3339()}};
    if (r.chat) {
      j["message"] = {{"role", "assistant"}, {"content", ""}};
      j["done_reason"] = unload ? "unload" : "load";
      j["done"] = true;
    } else {
      j["response"] = "";
      j["done"] = true;
      j["done_reason"] = unload ? "unload" : "load";
    }
    res.set_content(dump(j), r.stream ? "application/x-ndjson" : "application/json");
  }

  void chat(const httplib::Request& req, httplib::Response& res) { handle(req, res, true); }
  void generate(const httplib::Request& req, httplib::Response& res) { handle(req, res, false); }

  void handle(const httplib::Request& req, httplib::Response& res, bool is_chat) {
    auto r = std::make_shared<OllamaRequest>();
    r->t_start = Clock::now();
    r->chat = is_chat;
    ApiError err;
    std::optional<json> parsed = parse_body(req.body, err);
    if (!parsed) return send_ollama_error(res, err);
    const json& body = *parsed;
    ServedModel* mp = find(body, r->model_name, err);
    if (mp == nullptr) return send_ollama_error(res, err);
    ServedModel& m = *mp;
    const engine::Model& model = m.model();
    if (auto e = parse_common(body, m, *r)) return send_ollama_error(res, *e);

    if (is_chat) {
      if (body.contains("messages") && !body["messages"].is_null() &&
          !body["messages"].is_array())
        return send_ollama_error(res, bad_request("'messages' must be an array"));
      if (!body.contains("messages") || body["messages"].is_null() ||
          body["messages"].empty())
        return load_only(res, *r, body);
      if (body.contains("tools") && !body["tools"].is_null()) {
        if (!body["tools"].is_array())
          return send_ollama_error(res, bad_request("'tools' must be an array"));
        if (!body["tools"].empty()) r->chat_options.tools = body["tools"];
      }
      for (const auto& msg : body["messages"]) {
        engine::Message out;
        if (auto e = parse_message(msg, out)) return send_ollama_error(res, *e);
        if (images_given(msg)) return send_ollama_error(res, no_images(m));
        r->messages.push_back(std::move(out));
      }
      auto text = engine::render_chat(model, m.format(), r->messages, true, r->chat_options);
      if (!text)
        return send_ollama_error(res, bad_request("chat template: " + text.status().message()));
      r->reply_format = m.format().fallback ? engine::ReplyFormat::kPlain
                                            : engine::detect_reply_format(m.format().source);
      r->thinking_open = engine::prompt_opens_thinking(r->reply_format, *text);
      r->gen.prompt = model.tokenize_prompt(*text, /*parse_special=*/true);
    } else {
      auto str = [&](const char* key, std::string& out) -> std::optional<ApiError> {
        if (!body.contains(key) || body[key].is_null()) return std::nullopt;
        if (!body[key].is_string()) return bad_request(fmt::format("'{}' must be a string", key));
        out = body[key].get<std::string>();
        return std::nullopt;
      };
      std::string system, suffix, tmpl;
      if (auto e = str("prompt", r->prompt)) return send_ollama_error(res, *e);
      if (auto e = str("system", system)) return send_ollama_error(res, *e);
      if (auto e = str("suffix", suffix)) return send_ollama_error(res, *e);
      if (auto e = str("template", tmpl)) return send_ollama_error(res, *e);
      if (body.contains("raw") && !body["raw"].is_null()) {
        if (!body["raw"].is_boolean())
          return send_ollama_error(res, bad_request("'raw' must be a boolean"));
        r->raw = body["raw"].get<bool>();
      }
      if (!suffix.empty())
        return send_ollama_error(
            res, bad_request(fmt::format("\"{}\" does not support insert: 'suffix' (fill in the "
                                         "middle) is not supported by this server",
                                         r->model_name),
                             "unsupported_parameter"));
      if (!tmpl.empty())
        return send_ollama_error(
            res, bad_request("'template' (an Ollama Go template) is not supported: render the "
                             "prompt yourself and send it with \"raw\": true",
                             "unsupported_parameter"));
      if (images_given(body)) return send_ollama_error(res, no_images(m));
      if (r->prompt.empty()) return load_only(res, *r, body);
      if (r->raw) {
        r->gen.prompt = model.tokenize_prompt(r->prompt, /*parse_special=*/true);
      } else {
        if (!system.empty()) r->messages.push_back({"system", system});
        r->messages.push_back({"user", r->prompt});
        auto text = engine::render_chat(model, m.format(), r->messages, true, r->chat_options);
        if (!text)
          return send_ollama_error(res,
                                   bad_request("chat template: " + text.status().message()));
        r->reply_format = m.format().fallback ? engine::ReplyFormat::kPlain
                                            : engine::detect_reply_format(m.format().source);
        r->thinking_open = engine::prompt_opens_thinking(r->reply_format, *text);
        // `context` (deprecated): an earlier reply's tokens, continued as text.
        std::string prefix;
        if (body.contains("context") && body["context"].is_array() &&
            !body["context"].empty()) {
          std::vector<int32_t> ctx;
          for (const auto& t : body["context"]) {
            if (!t.is_number_integer() || !model.tokenizer().valid(t.get<int32_t>()))
              return send_ollama_error(
                  res, bad_request("'context' must be token ids of this model"));
            ctx.push_back(t.get<int32_t>());
          }
          prefix = model.tokenizer().detokenize(ctx, /*remove_special=*/false,
                                                /*unparse_special=*/true);
        }
        r->gen.prompt = model.tokenize_prompt(prefix + *text, /*parse_special=*/true);
      }
    }
    if (auto e = app_.check_limits(m, r->gen)) return send_ollama_error(res, *e);

    if (!r->stream) {
      const Clock::time_point t_gen = Clock::now();
      auto out = m.generate(r->gen);
      if (!out) return send_ollama_error(res, engine_error(out.status()));
      const engine::ParsedReply reply = ReplySplitter(model, *r).whole(*out);
      record(m, *r, *out, reply);  // committed before any byte is sent
      res.set_content(dump(final_json(m, *r, *out, t_gen, &reply)), "application/json");
      return;
    }

    res.set_chunked_content_provider(
        "application/x-ndjson", [this, &m, r](size_t, httplib::DataSink& sink) {
          auto send = [&](const json& j) {
            const std::string s = dump(j) + "\n";
            return sink.write(s.data(), s.size());
          };
          bool alive = true;
          const Clock::time_point t_gen = Clock::now();
          ReplySplitter splitter(m.model(), *r);
          auto out = m.generate(r->gen, [&](const engine::TokenEvent& ev) {
            if (!alive || !sink.is_writable()) return alive = false;
            const engine::ReplyStream::Delta d = splitter.push(ev);
            if (d.empty() && ev.logprobs == nullptr) return true;
            alive = send(chunk(m, *r, {d.content, d.reasoning, {}}, ev.logprobs));
            return alive;
          });
          if (!out) {
            if (alive) send(json{{"error", engine_error(out.status()).message}});
            sink.done();
            return true;
          }
          engine::ReplyStream::Delta rest;
          const engine::ParsedReply reply = splitter.finish(*out, &rest);
          if (alive && !rest.empty())
            alive = send(chunk(m, *r, {rest.content, rest.reasoning, {}}, nullptr));
          // Tool calls go out whole, in one line before the last (as Ollama sends them).
          if (alive && !reply.tool_calls.empty())
            alive = send(chunk(m, *r, {"", "", reply.tool_calls}, nullptr));
          record(m, *r, *out, reply);  // committed before the last line is sent
          if (alive) send(final_json(m, *r, *out, t_gen, nullptr));
          sink.done();
          return true;
        });
  }

  void embed(const httplib::Request& req, httplib::Response& res, bool legacy) {
    const Clock::time_point t_start = Clock::now();
    ApiError err;
    std::optional<json> parsed = parse_body(req.body, err);
    if (!parsed) return send_ollama_error(res, err);
    const json& body = *parsed;
    std::string name;
    ServedModel* mp = find(body, name, err);
    if (mp == nullptr) return send_ollama_error(res, err);
    ServedModel& m = *mp;
    std::vector<std::string> inputs;
    bool truncate = true;
    if (legacy) {
      if (!body.contains("prompt") || !body["prompt"].is_string())
        return send_ollama_error(res, bad_request("'prompt' must be a string"));
      inputs.push_back(body["prompt"].get<std::string>());
    } else {
      const json in = body.contains("input") ? body["input"] : json();
      if (in.is_string()) {
        inputs.push_back(in.get<std::string>());
      } else if (in.is_array()) {
        for (const auto& x : in) {
          if (!x.is_string())
            return send_ollama_error(
                res, bad_request("'input' must be a string or an array of strings"));
          inputs.push_back(x.get<std::string>());
        }
      } else if (!in.is_null()) {
        return send_ollama_error(
            res, bad_request("'input' must be a string or an array of strings"));
      }
      if (body.contains("truncate") && !body["truncate"].is_null()) {
        if (!body["truncate"].is_boolean())
          return send_ollama_error(res, bad_request("'truncate' must be a boolean"));
        truncate = body["truncate"].get<bool>();
      }
      std::optional<int64_t> dims;
      if (auto e = int_in(body, "dimensions", 1, INT32_MAX, dims))
        return send_ollama_error(res, *e);
      if (dims && *dims != m.model().hparams().n_embd)
        return send_ollama_error(
            res, bad_request(fmt::format("dimensions {} is not supported: this model's "
                                         "embeddings have {} dimensions",
                                         *dims, m.model().hparams().n_embd)));
    }
    // The legacy endpoint, like Ollama's, returns the vector as pooled (not normalized).
    const Clock::time_point t_load = Clock::now();
    json vectors = json::array();
    int64_t n_tokens = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].empty() && legacy) break;  // Ollama: an empty prompt gives []
      std::vector<int32_t> tokens =
          m.model().tokenize_prompt(inputs[i], /*parse_special=*/false);
      if (static_cast<int64_t>(tokens.size()) > m.n_ctx()) {
        if (!truncate)
          return send_ollama_error(
              res, bad_request(fmt::format("input {} is {} tokens, the context is {} tokens "
                                           "(\"truncate\": true cuts it to fit)",
                                           i, tokens.size(), m.n_ctx()),
                               "context_length_exceeded"));
        tokens.resize(static_cast<size_t>(m.n_ctx()));
      }
      auto v = m.embed(tokens, /*normalize=*/!legacy);
      if (!v) return send_ollama_error(res, engine_error(v.status()));
      n_tokens += static_cast<int64_t>(tokens.size());
      json vec = json::array();
      for (float x : *v) vec.push_back(shortest(x));
      vectors.push_back(std::move(vec));
    }
    json out;
    if (legacy) {
      out["embedding"] = vectors.empty() ? json::array() : vectors[0];
    } else {
      out = {{"model", name},
             {"embeddings", std::move(vectors)},
             {"total_duration", ns_between(t_start, Clock::now())},
             {"load_duration", ns_between(t_start, t_load)},
             {"prompt_eval_count", n_tokens}};
    }
    res.set_content(dump(out), "application/json");
  }

  void tags(httplib::Response& res) const {
    json models = json::array();
    for (const auto& m : app_.models()) {
      const ModelFacts f = model_facts(*m);
      models.push_back({{"name", ollama_name(m->id())},
                        {"model", ollama_name(m->id())},
                        {"modified_at", modified_at(*m)},
                        {"size", m->model().file_size()},
                        {"digest", m->sha256()},
                        {"details", details_json(f)}});
    }
    res.set_content(dump(json{{"models", std::move(models)}}), "application/json");
  }

  void ps(httplib::Response& res) const {
    json models = json::array();
    for (const auto& m : app_.models()) {
      const ModelFacts f = model_facts(*m);
      const model::MemoryEstimate mem =
          model::estimate_memory(m->model().hparams(), f.tensor_bytes, m->n_ctx());
      models.push_back({{"name", ollama_name(m->id())},
                        {"model", ollama_name(m->id())},
                        {"size", mem.total()},
                        {"digest", m->sha256()},
                        {"details", details_json(f)},
                        // Loaded for the server's life (Ollama's keep_alive -1).
                        {"expires_at", "9999-12-31T23:59:59Z"},
                        {"size_vram", 0},
                        {"context_length", m->n_ctx()}});
    }
    res.set_content(dump(json{{"models", std::move(models)}}), "application/json");
  }

  void show(const httplib::Request& req, httplib::Response& res) const {
    ApiError err;
    std::optional<json> parsed = parse_body(req.body, err);
    if (!parsed) return send_ollama_error(res, err);
    const json& body = *parsed;
    std::string name;
    ServedModel* mp = find(body, name, err);
    if (mp == nullptr) return send_ollama_error(res, err);
    const ServedModel& m = *mp;
    const bool verbose = body.value("verbose", false);
    const ModelFacts f = model_facts(m);
    const gguf::File* file = m.model().weights().file.get();
    const std::string& tmpl = m.format().source;

    json out = json::object();
    if (file != nullptr) {
      const std::string license = file->get_string_or("general.license", "");
      if (!license.empty()) out["license"] = license;
    }
    out["modelfile"] = fmt::format(
        "# Modelfile generated by loupe serve (/api/show)\n\nFROM {}\nTEMPLATE \"\"\"{}\"\"\"\n",
        m.path(), tmpl);
    out["template"] = tmpl;
    out["details"] = details_json(f);
    json info = json::object();
    info["general.architecture"] = f.arch;
    info["general.parameter_count"] = f.n_params;
    if (file != nullptr)
      for (const gguf::KeyValue& kv : file->metadata()) {
        if (kv.key.rfind("tokenizer.chat_template", 0) == 0) continue;  // it is "template"
        if (kv.key == "general.architecture") continue;
        info[kv.key] = gguf_value_json(kv.value, verbose ? SIZE_MAX : 16);
      }
    out["model_info"] = std::move(info);
    if (verbose && file != nullptr) {
      json tensors = json::array();
      for (const gguf::TensorInfo& t : file->tensors())
        tensors.push_back(
            {{"name", t.name}, {"type", std::string(dtype_name(t.type))}, {"shape", t.ne}});
      out["tensors"] = std::move(tensors);
    }
    json caps = json::array({"completion"});
    if (tmpl.find("tools") != std::string::npos) caps.push_back("tools");
    if (tmpl.find("<think>") != std::string::npos || tmpl.find("thinking") != std::string::npos ||
        tmpl.find("reasoning_content") != std::string::npos)
      caps.push_back("thinking");
    out["capabilities"] = std::move(caps);
    out["modified_at"] = modified_at(m);
    res.set_content(dump(out), "application/json");
  }

 private:
  static std::string modified_at(const ServedModel& m) {
    return rfc3339_nano(std::chrono::system_clock::from_time_t(static_cast<std::time_t>(m.created())));
  }

  App& app_;
};

}  // namespace

void install_ollama(App& app, httplib::Server& svr) {
  auto api = std::make_shared<Ollama>(app);
  svr.Post("/api/chat", [api](const httplib::Request& req, httplib::Response& res) {
    api->chat(req, res);
  });
  svr.Post("/api/generate", [api](const httplib::Request& req, httplib::Response& res) {
    api->generate(req, res);
  });
  svr.Post("/api/embed", [api](const httplib::Request& req, httplib::Response& res) {
    api->embed(req, res, /*legacy=*/false);
  });
  svr.Post("/api/embeddings", [api](const httplib::Request& req, httplib::Response& res) {
    api->embed(req, res, /*legacy=*/true);
  });
  svr.Get("/api/tags",
          [api](const httplib::Request&, httplib::Response& res) { api->tags(res); });
  svr.Get("/api/ps", [api](const httplib::Request&, httplib::Response& res) { api->ps(res); });
  svr.Post("/api/show", [api](const httplib::Request& req, httplib::Response& res) {
    api->show(req, res);
  });
  svr.Get("/api/version", [&app](const httplib::Request&, httplib::Response& res) {
    res.set_content(dump(json{{"version", app.options().version}}), "application/json");
  });
}

}  // namespace loupe::server
