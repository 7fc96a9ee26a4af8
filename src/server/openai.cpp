// The OpenAI API: GET /v1/models, POST /v1/chat/completions, POST /v1/completions.
#include <cmath>
#include <ctime>
#include <memory>
#include <optional>

#include "engine/chat_output.h"
#include "server/app.h"
#include "sample/grammar.h"
#include "sample/json_schema.h"
#include "sample/logprobs.h"
#include "tokenizer/tokenizer.h"

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

  // Tools (chat only).
  json tools = json::array();       // validated OpenAI tool objects
  std::string tool_choice = "auto";  // none | auto | required | function
  std::string forced_name;           // tool_choice {type:"function", function:{name}}
  bool parallel_tool_calls = true;
  bool reasoning_none = false;  // reasoning_format "none": the thinking stays in the content
  json template_kwargs = json::object();  // chat_template_kwargs, reasoning_effort

  // Decided at render time.
  engine::ReplyFormat reply_format = engine::ReplyFormat::kPlain;
  bool thinking_open = false;
  bool structured = false;      // the reply is parsed from the special-token text
  std::string forced_prefix;    // grammar-forced text before the calls (a closed think block)

  bool tools_active() const { return !tools.empty() && tool_choice != "none"; }
  bool forced() const { return tools_active() && tool_choice != "auto"; }
};

// tools: [{type:"function", function:{name, description?, parameters?}}].
std::optional<ApiError> parse_tools(const json& body, ChatRequest& r) {
  if (body.contains("tools") && !body["tools"].is_null()) {
    const json& tools = body["tools"];
    if (!tools.is_array()) return bad_request("'tools' must be an array", "invalid_tools");
    constexpr size_t kMaxTools = 128;
    if (tools.size() > kMaxTools)
      return bad_request(fmt::format("{} tools: at most {} are accepted", tools.size(), kMaxTools),
                         "invalid_tools");
    for (size_t i = 0; i < tools.size(); ++i) {
      const json& t = tools[i];
      const std::string where = fmt::format("tools[{}]", i);
      if (!t.is_object() || t.value("type", "") != "function")
        return bad_request(where + ": must be an object with \"type\": \"function\"",
                           "invalid_tools");
      if (!t.contains("function") || !t["function"].is_object())
        return bad_request(where + ".function must be an object", "invalid_tools");
      const json& f = t["function"];
      if (!f.contains("name") || !f["name"].is_string() || f["name"].get<std::string>().empty())
        return bad_request(where + ".function.name must be a non-empty string", "invalid_tools");
      if (f.contains("description") && !f["description"].is_string() &&
          !f["description"].is_null())
        return bad_request(where + ".function.description must be a string", "invalid_tools");
      if (f.contains("parameters") && !f["parameters"].is_object() && !f["parameters"].is_null())
        return bad_request(where + ".function.parameters must be a JSON Schema object",
                           "invalid_tools");
      for (size_t j = 0; j < i; ++j)
        if (tools[j]["function"]["name"] == f["name"])
          return bad_request(where + ": duplicate function name " + f["name"].dump(),
                             "invalid_tools");
    }
    r.tools = tools;
  }
  if (body.contains("tool_choice") && !body["tool_choice"].is_null()) {
    const json& tc = body["tool_choice"];
    if (tc.is_string()) {
      r.tool_choice = tc.get<std::string>();
      if (r.tool_choice != "none" && r.tool_choice != "auto" && r.tool_choice != "required")
        return bad_request("'tool_choice' must be none, auto, required or "
                           "{\"type\": \"function\", \"function\": {\"name\": ...}}",
                           "invalid_tool_choice");
    } else if (tc.is_object() && tc.value("type", "") == "function" && tc.contains("function") &&
               tc["function"].is_object() && tc["function"].contains("name") &&
               tc["function"]["name"].is_string()) {
      r.tool_choice = "function";
      r.forced_name = tc["function"]["name"].get<std::string>();
      bool found = false;
      for (const auto& t : r.tools) found = found || t["function"]["name"] == r.forced_name;
      if (!found)
        return bad_request("tool_choice names function '" + r.forced_name +
                               "', which is not in 'tools'",
                           "invalid_tool_choice");
    } else {
      return bad_request("'tool_choice' must be none, auto, required or "
                         "{\"type\": \"function\", \"function\": {\"name\": ...}}",
                         "invalid_tool_choice");
    }
    if (r.tool_choice == "required" && r.tools.empty())
      return bad_request("tool_choice 'required' needs a non-empty 'tools'", "invalid_tool_choice");
  }
  if (body.contains("parallel_tool_calls") && !body["parallel_tool_calls"].is_null()) {
    if (!body["parallel_tool_calls"].is_boolean())
      return bad_request("'parallel_tool_calls' must be a boolean", "invalid_type");
    r.parallel_tool_calls = body["parallel_tool_calls"].get<bool>();
  }
  if (body.contains("reasoning_format") && !body["reasoning_format"].is_null()) {
    const json& rf = body["reasoning_format"];
    if (!rf.is_string()) return bad_request("'reasoning_format' must be a string", "invalid_type");
    const std::string v = rf.get<std::string>();
    if (v != "none" && v != "auto" && v != "deepseek" && v != "deepseek-legacy")
      return bad_request("'reasoning_format' must be none, auto, deepseek or deepseek-legacy",
                         "invalid_value");
    r.reasoning_none = v == "none";
  }
  if (body.contains("chat_template_kwargs") && !body["chat_template_kwargs"].is_null()) {
    if (!body["chat_template_kwargs"].is_object())
      return bad_request("'chat_template_kwargs' must be an object", "invalid_type");
    r.template_kwargs = body["chat_template_kwargs"];
  }
  if (body.contains("reasoning_effort") && !body["reasoning_effort"].is_null()) {
    if (!body["reasoning_effort"].is_string())
      return bad_request("'reasoning_effort' must be a string", "invalid_type");
    r.template_kwargs["reasoning_effort"] = body["reasoning_effort"];
  }
  return std::nullopt;
}

// An assistant message's tool_calls: [{id, type:"function", function:{name, arguments}}].
std::optional<ApiError> parse_message_tool_calls(const json& calls, size_t index,
                                                 engine::Message& msg) {
  const std::string where = fmt::format("messages[{}].tool_calls", index);
  if (!calls.is_array()) return bad_request(where + " must be an array", "invalid_messages");
  for (const auto& c : calls) {
    if (!c.is_object() || !c.contains("function") || !c["function"].is_object())
      return bad_request(where + ": each call needs a 'function' object", "invalid_messages");
    const json& f = c["function"];
    if (!f.contains("name") || !f["name"].is_string())
      return bad_request(where + ": function.name must be a string", "invalid_messages");
    engine::ToolCall tc;
    tc.name = f["name"].get<std::string>();
    if (c.contains("id") && c["id"].is_string()) tc.id = c["id"].get<std::string>();
    if (!f.contains("arguments") || f["arguments"].is_null())
      tc.arguments = "{}";
    else if (f["arguments"].is_string())
      tc.arguments = f["arguments"].get<std::string>();
    else if (f["arguments"].is_object())
      tc.arguments = dump(f["arguments"]);
    else
      return bad_request(where + ": function.arguments must be a JSON string",
                         "invalid_messages");
    msg.tool_calls.push_back(std::move(tc));
  }
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
    const size_t index = r.messages.size();
    if (msg.role == "assistant" && m.contains("tool_calls") && !m["tool_calls"].is_null())
      if (auto e = parse_message_tool_calls(m["tool_calls"], index, msg)) return e;
    for (const char* key : {"reasoning_content", "tool_call_id", "name"}) {
      if (!m.contains(key) || m[key].is_null()) continue;
      if (!m[key].is_string())
        return bad_request(fmt::format("messages[{}].{} must be a string", index, key),
                           "invalid_messages");
      std::string v = m[key].get<std::string>();
      if (std::string_view(key) == "reasoning_content") msg.reasoning_content = std::move(v);
      else if (std::string_view(key) == "tool_call_id") msg.tool_call_id = std::move(v);
      else msg.name = std::move(v);
    }
    r.messages.push_back(std::move(msg));
  }
  if (auto e = parse_tools(body, r)) return e;
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
  d.reset();
  // llama-server's extras beyond OpenAI's fields.
  if (auto e = number_in(body, "typical_p", 0.0, 1.0, d)) return e;
  if (d) sp.typ_p = static_cast<float>(*d);
  d.reset();
  if (auto e = number_in(body, "mirostat_tau", 0.0, 100.0, d)) return e;
  if (d) sp.mirostat_tau = static_cast<float>(*d);
  d.reset();
  if (auto e = number_in(body, "mirostat_eta", 0.0, 10.0, d)) return e;
  if (d) sp.mirostat_eta = static_cast<float>(*d);
  if (body.contains("ignore_eos") && !body["ignore_eos"].is_null()) {
    if (!body["ignore_eos"].is_boolean())
      return bad_request("'ignore_eos' must be a boolean", "invalid_type");
    sp.ignore_eos = body["ignore_eos"].get<bool>();
  }
  std::optional<int64_t> i;
  if (auto e = int_in(body, "mirostat", 0, 2, i)) return e;
  if (i) sp.mirostat = static_cast<int32_t>(*i);
  i.reset();
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

// A GBNF string literal.
std::string gbnf_literal(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else out += c;
  }
  return out + "\"";
}

// The grammar of `schema` with its start rule named `name` instead of root.
std::optional<ApiError> schema_rules(const json& schema, const std::string& name,
                                     std::string& out) {
  Expected<std::string> g = sample::json_value_to_grammar(schema);
  if (!g) return bad_request("tools: " + g.status().message(), "invalid_tools");
  if (g->rfind("root ::= ", 0) != 0)
    return ApiError{500, "tools: unexpected grammar shape", "server_error", "internal"};
  out = name + g->substr(4);
  return std::nullopt;
}

// tool_choice "required" or a named function: a grammar that admits only tool calls whose
// arguments match their function's parameters schema. Qwen/Hermes-style templates get their own
// <tool_call> syntax; every other family gets {"tool_calls": [{"name", "arguments"}]}, parsed as
// ReplyFormat::kJson. A reasoning block the prompt left open is closed first.
std::optional<ApiError> build_tool_grammar(ChatRequest& r) {
  json calls = json::array();
  for (const auto& t : r.tools) {
    const json& f = t["function"];
    if (!r.forced_name.empty() && f["name"] != r.forced_name) continue;
    json params = f.contains("parameters") && f["parameters"].is_object()
                      ? f["parameters"]
                      : json{{"type", "object"}, {"properties", json::object()}};
    calls.push_back({{"type", "object"},
                     {"properties", {{"name", {{"const", f["name"]}}}, {"arguments", params}}},
                     {"required", {"name", "arguments"}}});
  }
  const json one = calls.size() == 1 ? calls[0] : json{{"anyOf", calls}};
  using engine::ReplyFormat;
  const ReplyFormat f = r.reply_format;
  const bool hermes = f == ReplyFormat::kQwen || f == ReplyFormat::kQwen3Coder ||
                      f == ReplyFormat::kGranite || f == ReplyFormat::kSmolLM3;
  std::string rules, root;
  if (hermes) {
    if (auto e = schema_rules(one, "tool-call-body", rules)) return e;
    const std::string call = "\"<tool_call>\\n\" tool-call-body \"\\n</tool_call>\"";
    r.forced_prefix = r.thinking_open ? "</think>\n\n" : "";
    root = call + (r.parallel_tool_calls ? " (\"\\n\" " + call + ")*" : "");
  } else {
    json list = {{"type", "array"}, {"items", one}, {"minItems", 1}};
    if (!r.parallel_tool_calls) list["maxItems"] = 1;
    const json wrapper = {{"type", "object"},
                          {"properties", {{"tool_calls", list}}},
                          {"required", {"tool_calls"}}};
    if (auto e = schema_rules(wrapper, "tool-calls-json", rules)) return e;
    r.forced_prefix =
        r.thinking_open ? std::string(engine::thinking_close_marker(f)) : std::string();
    root = "tool-calls-json";
    r.reply_format = ReplyFormat::kJson;
    r.thinking_open = false;
  }
  if (!r.forced_prefix.empty()) root = gbnf_literal(r.forced_prefix) + " " + root;
  r.gen.grammar = "root ::= " + root + "\n" + rules;
  auto parsed = sample::Grammar::parse(r.gen.grammar);
  if (!parsed)
    return ApiError{500, "tools: the tool-call grammar does not parse: " +
                             parsed.status().message(), "server_error", "internal"};
  return std::nullopt;
}

// What the assistant said, apart.
struct Reply {
  std::string content, reasoning;
  std::vector<engine::ToolCall> tool_calls;
};

// The generated text with the text of control tokens (<|channel|>, <think>...), without a
// matched stop string and what follows.
std::string special_text(const ServedModel& m, const engine::GenerateResult& r) {
  const auto& tok = m.model().tokenizer();
  std::string text;
  for (int32_t id : r.tokens) text += tok.token_to_piece(id, /*special=*/true);
  if (r.stop_reason == engine::StopReason::kStopString && !r.stop_string.empty())
    if (const size_t at = text.find(r.stop_string); at != std::string::npos) text.resize(at);
  return text;
}

Reply reply_of(const ServedModel& m, const ChatRequest& cr, const engine::GenerateResult& r) {
  if (!cr.structured) return {r.text, "", {}};
  std::string text = special_text(m, r);
  if (!cr.forced_prefix.empty() && text.rfind(cr.forced_prefix, 0) == 0)
    text.erase(0, cr.forced_prefix.size());
  engine::ParsedReply p = engine::parse_reply(cr.reply_format, text, cr.thinking_open);
  // Without tools, call-shaped text is not a call: the reply is shown as generated.
  if (!cr.tools_active() && !p.tool_calls.empty()) return {r.text, "", {}};
  return {std::move(p.content), std::move(p.reasoning), std::move(p.tool_calls)};
}

json tool_calls_json(const std::vector<engine::ToolCall>& calls, bool indexed) {
  json out = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    json c = json::object();
    if (indexed) c["index"] = i;
    c["id"] = calls[i].id;
    c["type"] = "function";
    c["function"] = {{"name", calls[i].name}, {"arguments", calls[i].arguments}};
    out.push_back(std::move(c));
  }
  return out;
}

// The store's `extra` of a message: what it carried besides role and content.
std::string message_extra(const std::vector<engine::ToolCall>& calls,
                          const std::string& reasoning, const std::string& tool_call_id = {},
                          const std::string& name = {}) {
  json e = json::object();
  if (!calls.empty()) e["tool_calls"] = tool_calls_json(calls, false);
  if (!tool_call_id.empty()) e["tool_call_id"] = tool_call_id;
  if (!name.empty()) e["name"] = name;
  if (!reasoning.empty()) e["reasoning_content"] = reasoning;
  return e.empty() ? std::string() : dump(e);
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

  int64_t record(const ServedModel& m, const ChatRequest& cr, const engine::GenerateResult& r,
                 const Reply& reply) {
    App::Record rec;
    if (cr.text_completion) {
      rec.messages.push_back({"prompt", cr.prompt_text});
      rec.reply = {"completion", r.text};
    } else {
      for (const auto& msg : cr.messages)
        rec.messages.push_back({msg.role, msg.content,
                                message_extra(msg.tool_calls, msg.reasoning_content,
                                              msg.tool_call_id, msg.name)});
      rec.reply = {"assistant", reply.content, message_extra(reply.tool_calls, reply.reasoning)};
    }
    rec.sampler = sampler_json(cr.gen.sampler);
    rec.sampler["n_predict"] = cr.gen.n_predict;
    rec.sampler["stop"] = cr.gen.stop;
    rec.sampler["response_format"] = cr.response_format;
    rec.sampler["endpoint"] = cr.text_completion ? "/v1/completions" : "/v1/chat/completions";
    if (!cr.gen.grammar.empty()) rec.sampler["grammar"] = cr.gen.grammar;
    if (!cr.text_completion && !cr.tools.empty()) {
      rec.sampler["tools"] = cr.tools;
      rec.sampler["tool_choice"] = cr.tool_choice == "function" ? cr.forced_name : cr.tool_choice;
    }
    if (cr.structured) rec.sampler["reply_format"] = engine::reply_format_name(cr.reply_format);
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
      engine::ChatOptions opts;
      if (cr->tools_active()) opts.tools = cr->tools;
      opts.kwargs = cr->template_kwargs;
      auto text = engine::render_chat(model, m.format(), cr->messages, true, opts);
      if (!text) return send_error(res, bad_request("chat template: " + text.status().message()));
      cr->gen.prompt = model.tokenize_prompt(*text, /*parse_special=*/true);
      cr->reply_format = m.format().fallback ? engine::ReplyFormat::kPlain
                                             : engine::detect_reply_format(m.format().source);
      cr->thinking_open = engine::prompt_opens_thinking(cr->reply_format, *text);
      if (cr->forced()) {
        if (!cr->gen.grammar.empty())
          return send_error(res, bad_request("response_format cannot be combined with "
                                             "tool_choice 'required' or a named function",
                                             "invalid_tool_choice"));
        if (auto e = build_tool_grammar(*cr)) return send_error(res, *e);
      }
      cr->structured = cr->forced() ||
                       (cr->reply_format != engine::ReplyFormat::kPlain && !cr->reasoning_none);
    }
    if (auto e = app_.check_limits(m, cr->gen)) return send_error(res, *e);
    const std::string id = (text_completion ? "cmpl-" : "chatcmpl-") + random_hex(24);

    if (!cr->stream) {
      auto r = m.generate(cr->gen);
      if (!r) return send_error(res, engine_error(r.status()));
      const Reply reply = text_completion ? Reply{r->text, "", {}} : reply_of(m, *cr, *r);
      const int64_t conv = record(m, *cr, *r, reply);  // committed before any byte is sent
      json choice = {{"index", 0}};
      if (text_completion) {
        choice["text"] = r->text;
      } else {
        json msg = {{"role", "assistant"}};
        msg["content"] = reply.content.empty() && !reply.tool_calls.empty() ? json(nullptr)
                                                                            : json(reply.content);
        if (!reply.reasoning.empty()) msg["reasoning_content"] = reply.reasoning;
        if (!reply.tool_calls.empty()) msg["tool_calls"] = tool_calls_json(reply.tool_calls, false);
        choice["message"] = std::move(msg);
      }
      if (cr->logprobs && text_completion) {
        choice["logprobs"] = legacy_logprobs(m, r->logprobs);
      } else if (cr->logprobs) {
        json content = json::array();
        for (const auto& lp : r->logprobs) content.push_back(logprob_item(m, lp));
        choice["logprobs"] = {{"content", std::move(content)}, {"refusal", nullptr}};
      } else {
        choice["logprobs"] = nullptr;
      }
      choice["finish_reason"] =
          reply.tool_calls.empty() ? engine::finish_reason(r->stop_reason) : "tool_calls";
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
          // Structured replies: the special-token text, split as it is decided.
          tokenizer::StreamDecoder decoder(m.model().tokenizer(), /*special=*/true);
          engine::ReplyStream stream(cr->reply_format, cr->thinking_open);
          size_t skip = cr->forced_prefix.size();
          auto feed = [&](std::string piece) {
            const size_t k = std::min(skip, piece.size());
            piece.erase(0, k);
            skip -= k;
            return stream.push(piece);
          };
          auto delta_json = [](const engine::ReplyStream::Delta& d) {
            json delta = json::object();
            if (!d.reasoning.empty()) delta["reasoning_content"] = d.reasoning;
            if (!d.content.empty()) delta["content"] = d.content;
            return delta;
          };
          auto r = m.generate(cr->gen, [&](const engine::TokenEvent& ev) {
            if (!alive || !sink.is_writable()) return alive = false;
            json delta;
            if (cr->structured) {
              const engine::ReplyStream::Delta d =
                  feed(ev.token >= 0 ? decoder.push(ev.token) : std::string());
              if (d.empty() && ev.logprobs == nullptr) return true;
              delta = delta_json(d);
            } else {
              if (ev.text.empty() && ev.logprobs == nullptr) return true;
              delta = {{"content", std::string(ev.text)}};
            }
            json c = base_chunk(m, id, cr->text_completion);
            json choice = {{"index", 0}};
            if (cr->text_completion)
              choice["text"] = std::string(ev.text);
            else
              choice["delta"] = std::move(delta);
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
          Reply reply{r->text, "", {}};
          if (cr->structured) {
            feed(decoder.flush());
            engine::ReplyStream::Delta rest;
            engine::ParsedReply p = stream.finish(&rest);
            reply = {std::move(p.content), std::move(p.reasoning), std::move(p.tool_calls)};
            if (!cr->tools_active()) reply.tool_calls.clear();
            auto send_delta = [&](json delta) {
              json c = base_chunk(m, id, false);
              c["choices"] = json::array({{{"index", 0}, {"delta", std::move(delta)},
                                           {"logprobs", nullptr}, {"finish_reason", nullptr}}});
              if (alive) alive = send(c);
            };
            if (!rest.empty()) send_delta(delta_json(rest));
            // Each call whole, after the text (OpenAI's fragments may be complete ones).
            if (!reply.tool_calls.empty())
              send_delta({{"tool_calls", tool_calls_json(reply.tool_calls, true)}});
          }
          json last = base_chunk(m, id, cr->text_completion);
          json end = {{"index", 0}};
          if (cr->text_completion)
            end["text"] = "";
          else
            end["delta"] = json::object();
          end["logprobs"] = nullptr;
          end["finish_reason"] =
              reply.tool_calls.empty() ? engine::finish_reason(r->stop_reason) : "tool_calls";
          last["choices"] = json::array({std::move(end)});
          last["loupe"] = loupe_json(m, *r, 0);
          // Committed before the last byte ([DONE]) is sent.
          const int64_t conv = record(m, *cr, *r, reply);
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
