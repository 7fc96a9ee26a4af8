#include "engine/chat_output.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <random>

#include <nlohmann/json.hpp>

namespace loupe::engine {
namespace {

using Json = nlohmann::ordered_json;
constexpr size_t npos = std::string_view::npos;

// What a scan found, before the ends of content and reasoning are trimmed.
struct Raw {
  std::string content, reasoning;
  std::vector<ToolCall> calls;
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string_view trim_left(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

// Bytes at the end of `s` that are a proper prefix of one of `markers` (could become one).
size_t held_prefix(std::string_view s, std::initializer_list<std::string_view> markers) {
  size_t held = 0;
  for (std::string_view m : markers) {
    for (size_t n = std::min(s.size(), m.size() - 1); n > held; --n) {
      if (s.substr(s.size() - n) == m.substr(0, n)) {
        held = n;
        break;
      }
    }
  }
  return held;
}

size_t held_prefix(std::string_view s, const std::vector<std::string_view>& markers) {
  size_t held = 0;
  for (std::string_view m : markers) held = std::max(held, held_prefix(s, {m}));
  return held;
}

std::string random_call_id() {
  static constexpr char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id += kAlnum[rng() % (sizeof(kAlnum) - 1)];
  return id;
}

std::string dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

bool parse_json(std::string_view text, Json& out) {
  out = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  return !out.is_discarded();
}

// End (one past) of the JSON object or array starting at `pos`, or npos when it is not closed
// within `s`. Only brackets outside strings are counted; validity is checked by the parser.
size_t json_end(std::string_view s, size_t pos) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = pos; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '{' || c == '[')
      ++depth;
    else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
      if (depth < 0) return npos;
    }
  }
  return npos;
}

// Arguments as JSON text: objects re-serialized; a string holding JSON is that JSON.
std::string arguments_text(const Json& args) {
  if (args.is_string()) {
    Json inner;
    const std::string& s = args.get_ref<const std::string&>();
    if (parse_json(s, inner)) return dump(inner);
  }
  if (args.is_null()) return "{}";
  return dump(args);
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 256) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
           c == ':' || static_cast<unsigned char>(c) >= 0x80;
  });
}

bool add_call(std::string_view name, std::string arguments, std::string id,
              std::vector<ToolCall>& out) {
  if (!valid_name(name)) return false;
  out.push_back(
      {id.empty() ? random_call_id() : std::move(id), std::string(name), std::move(arguments)});
  return true;
}

// {"name": f, "arguments"|"parameters": {...}, "id"?: ...}
bool call_from_object(const Json& o, std::vector<ToolCall>& out, const char* name_key = "name",
                      const char* args_key = "arguments", const char* id_key = "id") {
  if (!o.is_object() || !o.contains(name_key) || !o[name_key].is_string()) return false;
  const Json* args = nullptr;
  if (o.contains(args_key))
    args = &o[args_key];
  else if (o.contains("parameters"))
    args = &o["parameters"];
  else if (o.contains("arguments"))
    args = &o["arguments"];
  if (args != nullptr && !args->is_object() && !args->is_string() && !args->is_null()) return false;
  std::string id;
  if (o.contains(id_key) && o[id_key].is_string()) id = o[id_key].get<std::string>();
  return add_call(o[name_key].get<std::string>(), args ? arguments_text(*args) : "{}",
                  std::move(id), out);
}

bool calls_from_array(const Json& a, std::vector<ToolCall>& out, const char* name_key = "name",
                      const char* args_key = "arguments", const char* id_key = "id") {
  if (!a.is_array() || a.empty()) return false;
  std::vector<ToolCall> calls;
  for (const Json& o : a)
    if (!call_from_object(o, calls, name_key, args_key, id_key)) return false;
  out.insert(out.end(), calls.begin(), calls.end());
  return true;
}

// A parameter value written as text (XML-style formats): JSON where it parses as JSON (numbers,
// booleans, objects...), else the string itself. One newline on each side is layout.
Json xml_value(std::string_view v) {
  if (starts_with(v, "\n")) v.remove_prefix(1);
  if (!v.empty() && v.back() == '\n') v.remove_suffix(1);
  Json j;
  if (!trim(v).empty() && parse_json(v, j)) return j;
  return Json(std::string(v));
}

// ---- body parsers: true when `body` is one or more well-formed calls -------------------------

// Inside <tool_call>...</tool_call>: Hermes JSON, Qwen3-Coder XML or GLM key/value pairs.
bool parse_tool_call_tag(std::string_view body, std::vector<ToolCall>& out) {
  body = trim(body);
  if (starts_with(body, "{")) {
    Json o;
    return parse_json(body, o) && call_from_object(o, out);
  }
  if (starts_with(body, "<function=")) {
    const size_t gt = body.find('>');
    if (gt == npos) return false;
    const std::string_view name = trim(body.substr(10, gt - 10));
    std::string_view rest = body.substr(gt + 1);
    const size_t fend = rest.rfind("</function>");
    if (fend == npos || !trim(rest.substr(fend + 11)).empty()) return false;
    rest = rest.substr(0, fend);
    Json args = Json::object();
    while (!trim(rest).empty()) {
      rest = trim_left(rest);
      if (!starts_with(rest, "<parameter=")) return false;
      const size_t kgt = rest.find('>');
      const size_t vend = rest.find("</parameter>");
      if (kgt == npos || vend == npos || vend < kgt) return false;
      args[std::string(trim(rest.substr(11, kgt - 11)))] =
          xml_value(rest.substr(kgt + 1, vend - kgt - 1));
      rest = rest.substr(vend + 12);
    }
    return add_call(name, dump(args), "", out);
  }
  // GLM: name, then <arg_key>k</arg_key><arg_value>v</arg_value> pairs.
  const size_t first = body.find("<arg_key>");
  const std::string_view name = trim(body.substr(0, first));
  if (!valid_name(name)) return false;
  Json args = Json::object();
  std::string_view rest = first == npos ? std::string_view() : body.substr(first);
  while (!trim(rest).empty()) {
    rest = trim_left(rest);
    if (!starts_with(rest, "<arg_key>")) return false;
    const size_t kend = rest.find("</arg_key>");
    if (kend == npos) return false;
    const std::string key(trim(rest.substr(9, kend - 9)));
    rest = trim_left(rest.substr(kend + 10));
    if (!starts_with(rest, "<arg_value>")) return false;
    const size_t vend = rest.find("</arg_value>");
    if (vend == npos) return false;
    args[key] = xml_value(rest.substr(11, vend - 11));
    rest = rest.substr(vend + 12);
  }
  return add_call(name, dump(args), "", out);
}

// Between <｜tool▁calls▁begin｜> and <｜tool▁calls▁end｜>: V3.1 "f<｜tool▁sep｜>{..}", R1
// "function<｜tool▁sep｜>f\n```json\n{..}\n```", each in
// <｜tool▁call▁begin｜>..<｜tool▁call▁end｜>.
bool parse_deepseek_calls(std::string_view body, std::vector<ToolCall>& out) {
  static constexpr std::string_view kBegin = "<｜tool▁call▁begin｜>", kSep = "<｜tool▁sep｜>",
                                    kEnd = "<｜tool▁call▁end｜>";
  std::vector<ToolCall> calls;
  body = trim(body);
  while (!body.empty()) {
    if (!starts_with(body, kBegin)) return false;
    const size_t end = body.find(kEnd);
    if (end == npos) return false;
    const std::string_view call = body.substr(kBegin.size(), end - kBegin.size());
    body = trim(body.substr(end + kEnd.size()));
    const size_t sep = call.find(kSep);
    if (sep == npos) return false;
    const std::string_view head = trim(call.substr(0, sep));
    std::string_view tail = call.substr(sep + kSep.size());
    std::string_view name = head, args = tail;
    const size_t fence = tail.find("```json");
    if (head == "function" && fence != npos) {
      name = trim(tail.substr(0, fence));
      args = tail.substr(fence + 7);
      const size_t close = args.rfind("```");
      if (close == npos) return false;
      args = args.substr(0, close);
    }
    Json a;
    if (!parse_json(trim(args), a) || !a.is_object()) return false;
    if (!add_call(name, dump(a), "", calls)) return false;
  }
  if (calls.empty()) return false;
  out.insert(out.end(), calls.begin(), calls.end());
  return true;
}

// <|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{..}<|tool_call_end|>...
bool parse_kimi_calls(std::string_view body, std::vector<ToolCall>& out) {
  static constexpr std::string_view kBegin = "<|tool_call_begin|>",
                                    kArgs = "<|tool_call_argument_begin|>",
                                    kEnd = "<|tool_call_end|>";
  std::vector<ToolCall> calls;
  body = trim(body);
  while (!body.empty()) {
    if (!starts_with(body, kBegin)) return false;
    const size_t end = body.find(kEnd), sep = body.find(kArgs);
    if (end == npos || sep == npos || sep > end) return false;
    const std::string_view id = trim(body.substr(kBegin.size(), sep - kBegin.size()));
    const std::string_view args = trim(body.substr(sep + kArgs.size(), end - sep - kArgs.size()));
    body = trim(body.substr(end + kEnd.size()));
    std::string_view name = id;
    if (starts_with(name, "functions.")) name.remove_prefix(10);
    if (const size_t colon = name.rfind(':'); colon != npos) name = name.substr(0, colon);
    Json a;
    if (!parse_json(args, a) || !a.is_object()) return false;
    if (!add_call(name, dump(a), std::string(id), calls)) return false;
  }
  if (calls.empty()) return false;
  out.insert(out.end(), calls.begin(), calls.end());
  return true;
}

// After [TOOL_CALLS]: a JSON array (Nemo) or f[CALL_ID]id[ARGS]{..} / f[ARGS]{..} (Small 3.2,
// Magistral), several separated by further [TOOL_CALLS].
bool parse_mistral_calls(std::string_view body, std::vector<ToolCall>& out) {
  body = trim(body);
  if (starts_with(body, "[")) {
    Json a;
    return parse_json(body, a) && calls_from_array(a, out);
  }
  std::vector<ToolCall> calls;
  while (!body.empty()) {
    size_t next = body.find("[TOOL_CALLS]");
    std::string_view one = body.substr(0, next);
    body = next == npos ? std::string_view() : trim(body.substr(next + 12));
    const size_t args_at = one.find("[ARGS]");
    if (args_at == npos) return false;
    std::string_view name = one.substr(0, args_at);
    std::string id;
    if (const size_t c = name.find("[CALL_ID]"); c != npos) {
      id = std::string(trim(name.substr(c + 9)));
      name = name.substr(0, c);
    }
    Json a;
    if (!parse_json(trim(one.substr(args_at + 6)), a) || !a.is_object()) return false;
    if (!add_call(trim(name), dump(a), std::move(id), calls)) return false;
  }
  if (calls.empty()) return false;
  out.insert(out.end(), calls.begin(), calls.end());
  return true;
}

// After <|python_tag|>: a JSON call, else code for the built-in python tool.
bool parse_python_tag(std::string_view body, std::vector<ToolCall>& out) {
  body = trim(body);
  Json o;
  if (starts_with(body, "{") && parse_json(body, o) &&
      call_from_object(o, out, "name", "parameters"))
    return true;
  if (body.empty()) return false;
  return add_call("python", dump(Json{{"code", std::string(body)}}), "", out);
}

// <function=f>{..}</function>: the body is "f>{..}".
bool parse_functionary_v31(std::string_view body, std::vector<ToolCall>& out) {
  const size_t gt = body.find('>');
  if (gt == npos) return false;
  const std::string_view args = trim(body.substr(gt + 1));
  Json a = Json::object();
  if (!args.empty() && (!parse_json(args, a) || !a.is_object())) return false;
  return add_call(trim(body.substr(0, gt)), dump(a), "", out);
}

// " functools[{..}, ..]"
bool parse_firefunction(std::string_view body, std::vector<ToolCall>& out) {
  Json a;
  return parse_json(trim(body), a) && calls_from_array(a, out);
}

// Command R7B <|START_ACTION|>[{"tool_call_id","tool_name","parameters"}]<|END_ACTION|>;
// Command R+ "Action: ```json [..] ```" (the tool "directly-answer" means no call).
bool parse_cohere_actions(std::string_view body, std::vector<ToolCall>& out) {
  body = trim(body);
  if (starts_with(body, "```json")) {
    body.remove_prefix(7);
    const size_t close = body.rfind("```");
    if (close == npos) return false;
    body = trim(body.substr(0, close));
  }
  Json a;
  if (!parse_json(body, a) || !a.is_array()) return false;
  Json calls = Json::array();
  for (const Json& o : a)
    if (!(o.is_object() && o.value("tool_name", "") == "directly-answer")) calls.push_back(o);
  if (calls.empty()) return !a.empty();
  return calls_from_array(calls, out, "tool_name", "parameters", "tool_call_id");
}

// Gemma 4 argument syntax: {key:value,...}, strings between <|"|> marks, bare numbers/booleans.
class GemmaArgs {
 public:
  explicit GemmaArgs(std::string_view s) : s_(s) {}
  bool parse(Json& out) {
    if (!value(out, 0)) return false;
    return trim(s_.substr(pos_)).empty();
  }

 private:
  static constexpr std::string_view kQuote = "<|\"|>";
  void ws() {
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
  }
  bool value(Json& out, int depth) {
    if (depth > 64) return false;
    ws();
    if (pos_ >= s_.size()) return false;
    if (starts_with(s_.substr(pos_), kQuote)) {
      const size_t end = s_.find(kQuote, pos_ + kQuote.size());
      if (end == npos) return false;
      out = std::string(s_.substr(pos_ + kQuote.size(), end - pos_ - kQuote.size()));
      pos_ = end + kQuote.size();
      return true;
    }
    if (s_[pos_] == '{') {
      ++pos_;
      out = Json::object();
      ws();
      if (pos_ < s_.size() && s_[pos_] == '}') return ++pos_, true;
      while (true) {
        ws();
        std::string key;
        if (starts_with(s_.substr(pos_), kQuote)) {
          Json k;
          if (!value(k, depth + 1)) return false;
          key = k.get<std::string>();
        } else {
          const size_t colon = s_.find(':', pos_);
          if (colon == npos) return false;
          key = std::string(trim(s_.substr(pos_, colon - pos_)));
          pos_ = colon;
        }
        ws();
        if (pos_ >= s_.size() || s_[pos_] != ':' || key.empty()) return false;
        ++pos_;
        Json v;
        if (!value(v, depth + 1)) return false;
        out[key] = std::move(v);
        ws();
        if (pos_ < s_.size() && s_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (pos_ < s_.size() && s_[pos_] == '}') return ++pos_, true;
        return false;
      }
    }
    if (s_[pos_] == '[') {
      ++pos_;
      out = Json::array();
      ws();
      if (pos_ < s_.size() && s_[pos_] == ']') return ++pos_, true;
      while (true) {
        Json v;
        if (!value(v, depth + 1)) return false;
        out.push_back(std::move(v));
        ws();
        if (pos_ < s_.size() && s_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (pos_ < s_.size() && s_[pos_] == ']') return ++pos_, true;
        return false;
      }
    }
    size_t end = pos_;
    while (end < s_.size() && s_[end] != ',' && s_[end] != '}' && s_[end] != ']') ++end;
    const std::string_view word = trim(s_.substr(pos_, end - pos_));
    pos_ = end;
    if (word.empty()) return false;
    if (word == "None" || word == "null")
      out = nullptr;
    else if (word == "True")
      out = true;
    else if (word == "False")
      out = false;
    else if (!parse_json(word, out))
      out = std::string(word);
    return true;
  }
  std::string_view s_;
  size_t pos_ = 0;
};

// <|tool_call>call:f{k:v}<tool_call|>: the body is "call:f{k:v}".
bool parse_gemma_call(std::string_view body, std::vector<ToolCall>& out) {
  body = trim(body);
  if (!starts_with(body, "call:")) return false;
  body.remove_prefix(5);
  const size_t brace = body.find('{');
  if (brace == npos) return false;
  Json args;
  if (!GemmaArgs(body.substr(brace)).parse(args) || !args.is_object()) return false;
  return add_call(trim(body.substr(0, brace)), dump(args), "", out);
}

// ---- the tag scanner shared by most families --------------------------------------------------

using BodyParser = bool (*)(std::string_view, std::vector<ToolCall>&);

struct Block {
  std::string_view open, close;  // close empty: the block runs to the end of the reply
  BodyParser parse;
};

struct TagSpec {
  std::vector<std::pair<std::string_view, std::string_view>> thinks;  // the first: thinking_open
  std::vector<Block> blocks;
  std::vector<std::string_view> drop;  // markers removed from the content
  bool leading_json = false;           // a reply that starts with a JSON call (Llama 3)
};

const TagSpec& tag_spec(ReplyFormat f) {
  static const std::pair<std::string_view, std::string_view> kThink = {"<think>", "</think>"};
  static const Block kToolCallTag = {"<tool_call>", "</tool_call>", parse_tool_call_tag};
  static const std::array<TagSpec, static_cast<size_t>(ReplyFormat::kCount)> specs = [] {
    std::array<TagSpec, static_cast<size_t>(ReplyFormat::kCount)> s;
    auto at = [&](ReplyFormat f) -> TagSpec& { return s[static_cast<size_t>(f)]; };
    for (ReplyFormat f : {ReplyFormat::kQwen, ReplyFormat::kQwen3Coder, ReplyFormat::kGranite,
                          ReplyFormat::kSmolLM3, ReplyFormat::kGlm})
      at(f) = {{kThink}, {kToolCallTag}, {}, false};
    const Block deepseek = {"<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", parse_deepseek_calls};
    at(ReplyFormat::kDeepSeekR1) = {{kThink}, {deepseek}, {}, false};
    at(ReplyFormat::kDeepSeekV31) = {{kThink}, {deepseek}, {}, false};
    at(ReplyFormat::kMistral) = {
        {{"[THINK]", "[/THINK]"}}, {{"[TOOL_CALLS]", "", parse_mistral_calls}}, {}, false};
    at(ReplyFormat::kLlama3) = {{}, {{"<|python_tag|>", "", parse_python_tag}}, {}, true};
    at(ReplyFormat::kFunctionaryV31) = {{},
                                        {{"<function=", "</function>", parse_functionary_v31},
                                         {"<|python_tag|>", "", parse_python_tag}},
                                        {},
                                        false};
    at(ReplyFormat::kFireFunctionV2) = {{}, {{"functools", "", parse_firefunction}}, {}, false};
    at(ReplyFormat::kCommandR) = {{{"<|START_THINKING|>", "<|END_THINKING|>"}},
                                  {{"<|START_ACTION|>", "<|END_ACTION|>", parse_cohere_actions},
                                   {"Action:", "", parse_cohere_actions}},
                                  {"<|START_RESPONSE|>", "<|END_RESPONSE|>"},
                                  false};
    at(ReplyFormat::kGemma) = {{{"<|channel>thought", "<channel|>"}},
                               {{"<|tool_call>", "<tool_call|>", parse_gemma_call}},
                               {},
                               false};
    at(ReplyFormat::kKimiK2) = {
        {kThink},
        {{"<|tool_calls_section_begin|>", "<|tool_calls_section_end|>", parse_kimi_calls}},
        {},
        false};
    at(ReplyFormat::kJson).leading_json = true;
    return s;
  }();
  return specs[static_cast<size_t>(f)];
}

// Calls in a JSON reply: {"tool_calls": [..]}, {"tool_call": {..}}, {"name", "arguments"} or
// an array of calls (kJson); Llama 3's {"name", "parameters"} objects separated by ';'.
size_t leading_json_calls(ReplyFormat f, std::string_view t, bool final, bool& undecided,
                          std::vector<ToolCall>& out) {
  undecided = false;
  size_t pos = 0;
  while (pos < t.size() && is_space(t[pos])) ++pos;
  if (pos == t.size()) {
    undecided = !final;
    return 0;
  }
  if (t[pos] != '{' && !(f == ReplyFormat::kJson && t[pos] == '[')) return 0;
  std::vector<ToolCall> calls;
  size_t end = 0;
  while (true) {
    const size_t e = json_end(t, pos);
    if (e == npos) {
      undecided = !final;
      return 0;
    }
    Json j;
    if (!parse_json(t.substr(pos, e - pos), j)) return 0;
    bool ok = false;
    if (f == ReplyFormat::kJson) {
      if (j.is_array())
        ok = calls_from_array(j, calls);
      else if (j.is_object() && j.contains("tool_calls"))
        ok = calls_from_array(j["tool_calls"], calls);
      else if (j.is_object() && j.contains("tool_call"))
        ok = call_from_object(j["tool_call"], calls);
      else
        ok = call_from_object(j, calls);
    } else {
      ok = call_from_object(j, calls, "name", "parameters");
    }
    if (!ok) return 0;
    end = e;
    // Llama 3.x may emit several calls separated by ';'.
    size_t p = e;
    while (p < t.size() && is_space(t[p])) ++p;
    if (f == ReplyFormat::kLlama3 && p < t.size() && t[p] == ';') {
      ++p;
      while (p < t.size() && is_space(t[p])) ++p;
      if (p < t.size() && t[p] == '{') {
        pos = p;
        continue;
      }
      if (p == t.size() && !final) {
        undecided = true;
        return 0;
      }
      end = p;
    }
    break;
  }
  out.insert(out.end(), calls.begin(), calls.end());
  return end;
}

Raw scan_tags(ReplyFormat f, std::string_view t, bool thinking_open, bool final) {
  const TagSpec& spec = tag_spec(f);
  Raw r;
  size_t pos = 0;
  if (spec.leading_json) {
    bool undecided = false;
    pos = leading_json_calls(f, t, final, undecided, r.calls);
    if (undecided) return r;
  }
  std::vector<std::string_view> markers;
  for (const auto& th : spec.thinks) markers.push_back(th.first);
  for (const auto& b : spec.blocks) markers.push_back(b.open);
  for (const auto& d : spec.drop) markers.push_back(d);

  bool in_think = thinking_open && !spec.thinks.empty();
  std::string_view think_close = in_think ? spec.thinks[0].second : std::string_view();
  while (pos < t.size()) {
    if (in_think) {
      const size_t e = t.find(think_close, pos);
      if (e == npos) {
        std::string_view rest = t.substr(pos);
        if (!final) rest.remove_suffix(held_prefix(rest, {think_close}));
        r.reasoning += rest;
        return r;
      }
      r.reasoning += t.substr(pos, e - pos);
      pos = e + think_close.size();
      in_think = false;
      continue;
    }
    size_t best = npos, best_len = 0, kind = 0, index = 0;
    auto consider = [&](std::string_view m, size_t k, size_t i) {
      const size_t at = t.find(m, pos);
      if (at == npos) return;
      if (at < best || (at == best && m.size() > best_len)) {
        best = at;
        best_len = m.size();
        kind = k;
        index = i;
      }
    };
    for (size_t i = 0; i < spec.thinks.size(); ++i) consider(spec.thinks[i].first, 0, i);
    for (size_t i = 0; i < spec.blocks.size(); ++i) consider(spec.blocks[i].open, 1, i);
    for (size_t i = 0; i < spec.drop.size(); ++i) consider(spec.drop[i], 2, i);
    if (best == npos) {
      std::string_view rest = t.substr(pos);
      if (!final) rest.remove_suffix(held_prefix(rest, markers));
      r.content += rest;
      return r;
    }
    r.content += t.substr(pos, best - pos);
    pos = best + best_len;
    if (kind == 0) {
      in_think = true;
      think_close = spec.thinks[index].second;
      continue;
    }
    if (kind == 2) continue;
    const Block& b = spec.blocks[index];
    const size_t e = b.close.empty() ? npos : t.find(b.close, pos);
    if (e == npos) {
      if (!final) return r;  // undecided until the block closes or the reply ends
      if (!b.parse(t.substr(pos), r.calls)) r.content += t.substr(best);
      return r;
    }
    if (!b.parse(t.substr(pos, e - pos), r.calls))
      r.content += t.substr(best, e + b.close.size() - best);
    pos = e + b.close.size();
  }
  return r;
}

// ---- harmony (gpt-oss) -------------------------------------------------------------------------

Raw scan_harmony(std::string_view t, bool final) {
  static constexpr std::string_view kStart = "<|start|>", kChannel = "<|channel|>",
                                    kMessage = "<|message|>";
  static const std::vector<std::string_view> kMarkers = {
      "<|start|>", "<|channel|>", "<|message|>",  "<|end|>",
      "<|call|>",  "<|return|>",  "<|constrain|>"};
  Raw r;
  size_t pos = 0;
  auto next_header = [&](size_t from) {
    return std::min(t.find(kStart, from), t.find(kChannel, from));
  };
  while (pos < t.size()) {
    // After the prompt's "<|start|>assistant" the reply may begin with its recipient.
    const bool at_header = starts_with(t.substr(pos), kStart) ||
                           starts_with(t.substr(pos), kChannel) ||
                           (pos == 0 && starts_with(trim_left(t), "to="));
    if (pos == 0 && !final && !at_header && trim_left(t).size() < 3 &&
        starts_with("to=", trim_left(t)))
      return r;  // may still become " to=functions.f"
    if (!at_header) {
      // Text outside any message (a model that skipped the channel): content.
      const size_t nx = next_header(pos);
      std::string_view seg = t.substr(pos, nx == npos ? npos : nx - pos);
      if (nx == npos && !final) seg.remove_suffix(held_prefix(seg, kMarkers));
      for (std::string_view m : {"<|end|>", "<|return|>", "<|call|>"})
        if (seg.size() >= m.size() && seg.substr(seg.size() - m.size()) == m)
          seg.remove_suffix(m.size());
      r.content += seg;
      if (nx == npos) return r;
      pos = nx;
      continue;
    }
    const size_t m = t.find(kMessage, pos);
    if (m == npos) return r;  // a header without its message: nothing to show yet (or ever)
    const std::string_view header = t.substr(pos, m - pos);
    const size_t body_start = m + kMessage.size();
    size_t e = npos, e_len = 0;
    for (std::string_view end : {"<|end|>", "<|call|>", "<|return|>", "<|start|>", "<|channel|>"}) {
      const size_t at = t.find(end, body_start);
      if (at < e) {
        e = at;
        // <|start|> and <|channel|> begin the next message: not consumed here.
        e_len = (end == kStart || end == kChannel) ? 0 : end.size();
      }
    }
    std::string_view channel, recipient;
    if (const size_t c = header.find(kChannel); c != npos) {
      channel = header.substr(c + kChannel.size());
      channel = channel.substr(0, std::min(channel.find(' '), channel.find('<')));
    }
    if (const size_t to = header.find("to="); to != npos) {
      recipient = header.substr(to + 3);
      recipient = recipient.substr(0, std::min(recipient.find(' '), recipient.find('<')));
    }
    std::string_view body = t.substr(body_start, e == npos ? npos : e - body_start);
    if (e == npos && !final) {
      if (!recipient.empty()) return r;  // a tool call is reported whole
      body.remove_suffix(held_prefix(body, kMarkers));
    }
    if (!recipient.empty()) {
      std::string_view name = recipient;
      if (starts_with(name, "functions.")) name.remove_prefix(10);
      Json a;
      if (!(parse_json(trim(body), a) && a.is_object() && add_call(name, dump(a), "", r.calls)))
        r.content += t.substr(pos, e == npos ? npos : e + e_len - pos);
    } else if (channel == "analysis") {
      r.reasoning += body;
    } else {
      r.content += body;
    }
    if (e == npos) return r;
    pos = e + e_len;
  }
  return r;
}

// ---- functionary v3.2: >>>recipient\nbody ------------------------------------------------------

Raw scan_functionary_v32(std::string_view t, bool final) {
  static constexpr std::string_view kSep = ">>>";
  Raw r;
  size_t pos = starts_with(t, kSep) ? kSep.size() : 0;  // the prompt ends with ">>>"
  while (pos < t.size()) {
    const size_t nl = t.find('\n', pos);
    const size_t next = t.find(kSep, pos);
    if (nl == npos || (next != npos && next < nl)) {
      if (!final) return r;  // the recipient line is not complete
      r.content += t.substr(pos, next == npos ? npos : next - pos);
      if (next == npos) return r;
      pos = next + kSep.size();
      continue;
    }
    const std::string_view recipient = trim(t.substr(pos, nl - pos));
    std::string_view body = t.substr(nl + 1, next == npos ? npos : next - nl - 1);
    if (recipient == "all") {
      if (next == npos && !final) body.remove_suffix(held_prefix(body, {kSep}));
      r.content += body;
    } else {
      if (next == npos && !final) return r;
      Json a;
      const std::string_view args = trim(body);
      if (parse_json(args, a) && a.is_object()) {
        if (!add_call(recipient, dump(a), "", r.calls)) r.content += body;
      } else if (recipient == "python" && !args.empty()) {
        add_call("python", dump(Json{{"code", std::string(args)}}), "", r.calls);
      } else {
        r.content += t.substr(pos, next == npos ? npos : next - pos);
      }
    }
    if (next == npos) return r;
    pos = next + kSep.size();
  }
  return r;
}

Raw scan(ReplyFormat f, std::string_view t, bool thinking_open, bool final) {
  switch (f) {
    case ReplyFormat::kPlain:
    case ReplyFormat::kCount:
      return Raw{std::string(t), {}, {}};
    case ReplyFormat::kGptOss:
      return scan_harmony(t, final);
    case ReplyFormat::kFunctionaryV32:
      return scan_functionary_v32(t, final);
    default:
      return scan_tags(f, t, thinking_open, final);
  }
}

bool contains(std::string_view s, std::string_view m) {
  return s.find(m) != npos;
}

}  // namespace

ReplyFormat detect_reply_format(std::string_view src) {
  if (contains(src, "<|channel|>") && contains(src, "<|message|>")) return ReplyFormat::kGptOss;
  if (contains(src, "<｜tool▁calls▁begin｜>") || contains(src, "<｜Assistant｜>"))
    return contains(src, "```json") ? ReplyFormat::kDeepSeekR1 : ReplyFormat::kDeepSeekV31;
  if (contains(src, "<|tool_calls_section_begin|>")) return ReplyFormat::kKimiK2;
  if (contains(src, "<|tool_call>") || contains(src, "<|channel>")) return ReplyFormat::kGemma;
  if (contains(src, "[TOOL_CALLS]") || contains(src, "[THINK]")) return ReplyFormat::kMistral;
  if (contains(src, "<arg_key>")) return ReplyFormat::kGlm;
  if (contains(src, "<function=") && contains(src, "<parameter=")) return ReplyFormat::kQwen3Coder;
  if (contains(src, "<|START_ACTION|>") || contains(src, "Action:\\n```json") ||
      contains(src, "\nAction:\n```json"))
    return ReplyFormat::kCommandR;
  if (contains(src, ">>>all")) return ReplyFormat::kFunctionaryV32;
  if (contains(src, "<function=")) return ReplyFormat::kFunctionaryV31;
  if (contains(src, "functools[")) return ReplyFormat::kFireFunctionV2;
  if (contains(src, "<tool_call>")) {
    if (contains(src, "<|start_of_role|>")) return ReplyFormat::kGranite;
    return ReplyFormat::kQwen;
  }
  if (contains(src, "<think>")) {
    if (contains(src, "/no_think")) return ReplyFormat::kSmolLM3;
    return ReplyFormat::kQwen;
  }
  if (contains(src, "<|python_tag|>") ||
      (contains(src, "<|start_header_id|>") && contains(src, "tools")))
    return ReplyFormat::kLlama3;
  return ReplyFormat::kPlain;
}

const char* reply_format_name(ReplyFormat f) {
  switch (f) {
    case ReplyFormat::kPlain:
      return "plain";
    case ReplyFormat::kQwen:
      return "qwen";
    case ReplyFormat::kQwen3Coder:
      return "qwen3-coder";
    case ReplyFormat::kGranite:
      return "granite";
    case ReplyFormat::kSmolLM3:
      return "smollm3";
    case ReplyFormat::kGlm:
      return "glm";
    case ReplyFormat::kGptOss:
      return "gpt-oss";
    case ReplyFormat::kDeepSeekR1:
      return "deepseek-r1";
    case ReplyFormat::kDeepSeekV31:
      return "deepseek-v3.1";
    case ReplyFormat::kMistral:
      return "mistral";
    case ReplyFormat::kLlama3:
      return "llama3";
    case ReplyFormat::kFunctionaryV31:
      return "functionary-v3.1";
    case ReplyFormat::kFunctionaryV32:
      return "functionary-v3.2";
    case ReplyFormat::kFireFunctionV2:
      return "firefunction-v2";
    case ReplyFormat::kCommandR:
      return "command-r";
    case ReplyFormat::kGemma:
      return "gemma";
    case ReplyFormat::kKimiK2:
      return "kimi-k2";
    case ReplyFormat::kJson:
      return "json";
    case ReplyFormat::kCount:
      break;
  }
  return "unknown";
}

bool prompt_opens_thinking(ReplyFormat f, std::string_view prompt) {
  if (f == ReplyFormat::kPlain || f == ReplyFormat::kGptOss || f == ReplyFormat::kCount ||
      f == ReplyFormat::kFunctionaryV32 || f == ReplyFormat::kJson)
    return false;
  const TagSpec& spec = tag_spec(f);
  const std::string_view tail = trim(prompt);
  for (const auto& [open, close] : spec.thinks) {
    const size_t o = tail.rfind(open);
    if (o == npos) continue;
    // Open at the very end (after trimming), not closed again.
    if (o + open.size() == tail.size()) return true;
  }
  return false;
}

std::string_view thinking_close_marker(ReplyFormat f) {
  if (f == ReplyFormat::kPlain || f == ReplyFormat::kGptOss || f == ReplyFormat::kCount ||
      f == ReplyFormat::kFunctionaryV32 || f == ReplyFormat::kJson)
    return {};
  const TagSpec& spec = tag_spec(f);
  return spec.thinks.empty() ? std::string_view() : spec.thinks[0].second;
}

ParsedReply parse_reply(ReplyFormat f, std::string_view text, bool thinking_open) {
  Raw r = scan(f, text, thinking_open, /*final=*/true);
  ParsedReply out;
  out.content = f == ReplyFormat::kPlain ? std::move(r.content) : std::string(trim(r.content));
  out.reasoning = std::string(trim(r.reasoning));
  out.tool_calls = std::move(r.calls);
  return out;
}

ReplyStream::ReplyStream(ReplyFormat format, bool thinking_open)
    : format_(format), thinking_open_(thinking_open) {}

namespace {
// What may be released of a partial scan's text: the final parse trims both ends.
std::string_view releasable(ReplyFormat f, std::string_view raw) {
  if (f == ReplyFormat::kPlain) return raw;
  return trim(raw);
}

std::string take_new(std::string& sent, std::string_view now) {
  if (now.size() <= sent.size() || now.substr(0, sent.size()) != sent) return {};
  std::string delta(now.substr(sent.size()));
  sent.append(delta);
  return delta;
}
}  // namespace

ReplyStream::Delta ReplyStream::push(std::string_view text) {
  text_.append(text);
  if (text.empty()) return {};
  const Raw r = scan(format_, text_, thinking_open_, /*final=*/false);
  Delta d;
  d.content = take_new(sent_content_, releasable(format_, r.content));
  d.reasoning = take_new(sent_reasoning_, releasable(format_, r.reasoning));
  return d;
}

ParsedReply ReplyStream::finish(Delta* rest) {
  ParsedReply p = parse_reply(format_, text_, thinking_open_);
  Delta d;
  d.content = take_new(sent_content_, p.content);
  d.reasoning = take_new(sent_reasoning_, p.reasoning);
  if (rest != nullptr) *rest = std::move(d);
  return p;
}

}  // namespace loupe::engine
