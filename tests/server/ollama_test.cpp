// `loupe serve`'s Ollama API (/api/*) and embeddings (/api/embed, /v1/embeddings) end to end,
// through a child process serving stories260K.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/testdata.h"
#include "gguf/file.h"
#include "gguf/writer.h"
#include "serve_process.h"
#include "store/store.h"

namespace loupe {
namespace {

using json = nlohmann::json;
using testing::ServerProcess;
using testing::model_with_template;

constexpr int64_t kNEmbd = 64;  // stories260K

class OllamaTest : public testing::SharedServerTest<OllamaTest> {
 public:
  static std::vector<std::string> server_args() { return {"-c", "256"}; }

 protected:
  // A 200 JSON reply, parsed.
  static json ok(const httplib::Result& r) {
    EXPECT_TRUE(r) << httplib::to_string(r.error());
    if (!r) return json();
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body, nullptr, false);
  }
};

json chat_body(json options, bool stream = false) {
  return json{{"model", "stories260K"},
              {"messages", {{{"role", "user"}, {"content", "Once upon a time"}}}},
              {"stream", stream},
              {"options", std::move(options)}};
}

bool is_rfc3339_nano(const std::string& s) {
  static const std::regex kRe(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$)");
  return std::regex_match(s, kRe);
}

void expect_metrics(const json& j) {
  for (const char* k : {"total_duration", "load_duration", "prompt_eval_count",
                        "prompt_eval_duration", "eval_count", "eval_duration"})
    EXPECT_TRUE(j.contains(k) && j[k].is_number_integer()) << k << " in " << j.dump();
  EXPECT_GT(j["total_duration"].get<int64_t>(), 0);
  EXPECT_GT(j["prompt_eval_count"].get<int64_t>(), 0);
  EXPECT_GT(j["eval_count"].get<int64_t>(), 0);
  EXPECT_GE(j["total_duration"].get<int64_t>(), j["eval_duration"].get<int64_t>());
}

void expect_ollama_error(const httplib::Result& r, int status, const std::string& message = "") {
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, status) << r->body;
  const json j = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r->body;
  ASSERT_EQ(j.size(), 1u) << r->body;
  ASSERT_TRUE(j["error"].is_string()) << r->body;
  if (!message.empty()) {
    EXPECT_EQ(j["error"], message);
  }
}

std::vector<json> ndjson_lines(const std::string& body) {
  std::vector<json> lines;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    EXPECT_FALSE(line.empty()) << "blank line in NDJSON";
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << line;
    lines.push_back(std::move(j));
  }
  return lines;
}

double norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

TEST_F(OllamaTest, ChatNonStreaming) {
  auto r = post("/api/chat", chat_body({{"temperature", 0}, {"num_predict", 8}}));
  const json j = ok(r);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(j["model"], "stories260K");
  EXPECT_TRUE(is_rfc3339_nano(j["created_at"].get<std::string>())) << j["created_at"];
  EXPECT_EQ(j["message"]["role"], "assistant");
  EXPECT_FALSE(j["message"]["content"].get<std::string>().empty());
  EXPECT_EQ(j["done"], true);
  EXPECT_TRUE(j["done_reason"] == "length" || j["done_reason"] == "stop") << j["done_reason"];
  expect_metrics(j);
  EXPECT_LE(j["eval_count"].get<int64_t>(), 8);
  // Field order as Ollama's api.ChatResponse.
  const std::string raw = r->body;
  EXPECT_LT(raw.find("\"model\""), raw.find("\"created_at\""));
  EXPECT_LT(raw.find("\"created_at\""), raw.find("\"message\""));
  EXPECT_LT(raw.find("\"message\""), raw.find("\"done_reason\""));
  EXPECT_LT(raw.find("\"done_reason\""), raw.find("\"done\""));
  EXPECT_LT(raw.find("\"done\""), raw.find("\"total_duration\""));
}

TEST_F(OllamaTest, ChatStreamsNdjsonByDefault) {
  json body = chat_body({{"temperature", 0}, {"num_predict", 8}});
  body.erase("stream");  // Ollama streams unless told not to
  auto r = post("/api/chat", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/x-ndjson");
  const std::vector<json> lines = ndjson_lines(r->body);
  ASSERT_GE(lines.size(), 2u) << r->body;
  std::string text;
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["done"], false) << lines[i];
    EXPECT_EQ(lines[i]["model"], "stories260K");
    EXPECT_TRUE(is_rfc3339_nano(lines[i]["created_at"].get<std::string>()));
    EXPECT_EQ(lines[i]["message"]["role"], "assistant");
    EXPECT_FALSE(lines[i].contains("total_duration"));
    text += lines[i]["message"]["content"].get<std::string>();
  }
  const json& last = lines.back();
  EXPECT_EQ(last["done"], true);
  EXPECT_EQ(last["message"]["content"], "");
  EXPECT_TRUE(last["done_reason"].is_string());
  expect_metrics(last);

  // The same text as the non-streamed reply.
  const json whole = ok(post("/api/chat", chat_body({{"temperature", 0}, {"num_predict", 8}})));
  EXPECT_EQ(text, whole["message"]["content"]);
  EXPECT_EQ(last["eval_count"], whole["eval_count"]);
}

TEST_F(OllamaTest, SeedMakesSamplingReproducible) {
  auto run = [&](int seed) {
    const json j = ok(post("/api/chat", chat_body({{"temperature", 1.0}, {"top_k", 0},
                                                   {"top_p", 1.0}, {"seed", seed},
                                                   {"num_predict", 16}})));
    return j["message"]["content"].get<std::string>();
  };
  const std::string a = run(42);
  EXPECT_EQ(run(42), a);
  std::set<std::string> seen = {a};
  for (int seed = 1; seed <= 4; ++seed) seen.insert(run(seed));
  EXPECT_GT(seen.size(), 1u) << "different seeds all gave the same text";
}

TEST_F(OllamaTest, FormatJsonAndSchemaGiveParsableJson) {
  json body = chat_body({{"temperature", 0}, {"num_predict", 48}});
  body["format"] = "json";
  const json j = ok(post("/api/chat", body));
  const json content = json::parse(j["message"]["content"].get<std::string>(), nullptr, false);
  EXPECT_TRUE(content.is_object()) << j["message"]["content"];

  body["format"] = {{"type", "object"},
                    {"properties", {{"name", {{"type", "string"}, {"maxLength", 8}}}}},
                    {"required", {"name"}}};
  const json s = ok(post("/api/chat", body));
  const json obj = json::parse(s["message"]["content"].get<std::string>(), nullptr, false);
  ASSERT_TRUE(obj.is_object()) << s["message"]["content"];
  EXPECT_TRUE(obj["name"].is_string()) << obj;

  body["format"] = "yaml";
  expect_ollama_error(post("/api/chat", body), 400);
}

TEST_F(OllamaTest, ChatIsStoredWithItsEndpoint) {
  json body = chat_body({{"temperature", 0}, {"num_predict", 4}});
  body["messages"][0]["content"] = "Lily found a shiny zebra-stone";
  ok(post("/api/chat", body));
  auto st = store::Store::open(server_->data());
  ASSERT_TRUE(st) << st.status().message();
  auto found = (*st)->search("zebra-stone");
  ASSERT_TRUE(found);
  ASSERT_EQ(found->size(), 1u);
  auto c = (*st)->get((*found)[0].id);
  ASSERT_TRUE(c && c->has_value());
  ASSERT_EQ((*c)->exchanges.size(), 1u);
  const json sampler = json::parse((*c)->exchanges[0].sampler_json);
  EXPECT_EQ(sampler["endpoint"], "/api/chat");
  EXPECT_EQ(sampler["temperature"], 0);
}

TEST_F(OllamaTest, GenerateRawMatchesCompletions) {
  const json options = {{"temperature", 0}, {"num_predict", 8}, {"repeat_penalty", 1.0}};
  const json g = ok(post("/api/generate", {{"model", "stories260K:latest"},
                                           {"prompt", "Once upon a time"},
                                           {"raw", true},
                                           {"stream", false},
                                           {"options", options}}));
  EXPECT_EQ(g["model"], "stories260K:latest");  // echoed as sent
  EXPECT_EQ(g["done"], true);
  EXPECT_FALSE(g.contains("context"));  // raw: no conversational memory
  expect_metrics(g);
  const json c = ok(post("/v1/completions", {{"model", "stories260K"},
                                             {"prompt", "Once upon a time"},
                                             {"temperature", 0},
                                             {"max_tokens", 8}}));
  EXPECT_EQ(g["response"], c["choices"][0]["text"]);
}

TEST_F(OllamaTest, GenerateTemplatedStreamsAndReturnsContext) {
  auto r = post("/api/generate", {{"model", "stories260K"},
                                  {"prompt", "Tell me a story"},
                                  {"system", "You are a storyteller."},
                                  {"options", {{"temperature", 0}, {"num_predict", 6}}}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/x-ndjson");
  const std::vector<json> lines = ndjson_lines(r->body);
  ASSERT_GE(lines.size(), 2u);
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["done"], false);
    EXPECT_TRUE(lines[i]["response"].is_string());
  }
  const json& last = lines.back();
  EXPECT_EQ(last["done"], true);
  ASSERT_TRUE(last["context"].is_array());
  // The prompt's tokens (BOS first) and the reply's.
  EXPECT_GT(last["context"].size(), last["eval_count"].get<size_t>());
  EXPECT_EQ(last["context"][0], 1);
}

TEST_F(OllamaTest, GenerateEmptyPromptLoadsAndUnsupportedFieldsAre400) {
  const json j = ok(post("/api/generate", {{"model", "stories260K"}, {"stream", false}}));
  EXPECT_EQ(j["done"], true);
  EXPECT_EQ(j["done_reason"], "load");
  EXPECT_EQ(j["response"], "");
  const json u = ok(post("/api/chat", {{"model", "stories260K"}, {"messages", json::array()},
                                       {"keep_alive", 0}, {"stream", false}}));
  EXPECT_EQ(u["done_reason"], "unload");

  expect_ollama_error(post("/api/generate", {{"model", "stories260K"},
                                             {"prompt", "def f("},
                                             {"suffix", "return 1"}}),
                      400);
  expect_ollama_error(post("/api/generate", {{"model", "stories260K"},
                                             {"prompt", "What is this?"},
                                             {"images", {"aGVsbG8="}}}),
                      400);
  expect_ollama_error(post("/api/chat", {{"model", "stories260K"},
                                         {"messages", {{{"role", "wizard"}, {"content", "x"}}}}}),
                      400);
}

TEST_F(OllamaTest, UnknownModelIs404InOllamaShape) {
  expect_ollama_error(post("/api/chat", {{"model", "llama3.2"},
                                         {"messages", {{{"role", "user"}, {"content", "hi"}}}}}),
                      404, "model \"llama3.2\" not found, try pulling it first");
  expect_ollama_error(post("/api/show", {{"model", "nope:7b"}}), 404,
                      "model \"nope:7b\" not found, try pulling it first");
  expect_ollama_error(post("/api/generate", {{"prompt", "hi"}}), 400, "model is required");
}

TEST_F(OllamaTest, Tags) {
  auto c = server_->client();
  const json j = ok(c.Get("/api/tags"));
  ASSERT_EQ(j["models"].size(), 1u);
  const json& m = j["models"][0];
  EXPECT_EQ(m["name"], "stories260K:latest");
  EXPECT_EQ(m["model"], "stories260K:latest");
  EXPECT_TRUE(is_rfc3339_nano(m["modified_at"].get<std::string>()));
  EXPECT_EQ(m["size"].get<uint64_t>(),
            std::filesystem::file_size(testing::testdata_path("models/stories260K.gguf")));
  EXPECT_TRUE(std::regex_match(m["digest"].get<std::string>(), std::regex("^[0-9a-f]{64}$")));
  const json& d = m["details"];
  EXPECT_EQ(d["format"], "gguf");
  EXPECT_EQ(d["family"], "llama");
  EXPECT_EQ(d["families"], json::array({"llama"}));
  EXPECT_TRUE(std::regex_match(d["parameter_size"].get<std::string>(),
                               std::regex(R"(^\d+(\.\d+)?[KMB]?$)")))
      << d["parameter_size"];
  EXPECT_EQ(d["quantization_level"], "F32");
}

TEST_F(OllamaTest, Show) {
  for (const json& req : {json{{"model", "stories260K"}}, json{{"name", "stories260K:latest"}}}) {
    const json j = ok(post("/api/show", req));
    EXPECT_TRUE(j["modelfile"].is_string());
    EXPECT_FALSE(j["template"].get<std::string>().empty());
    EXPECT_EQ(j["details"]["format"], "gguf");
    EXPECT_EQ(j["model_info"]["general.architecture"], "llama");
    EXPECT_TRUE(j["model_info"]["llama.context_length"].is_number_integer());
    EXPECT_TRUE(j["model_info"]["general.parameter_count"].is_number_integer());
    EXPECT_TRUE(j["model_info"]["tokenizer.ggml.tokens"].is_null());  // not verbose
    EXPECT_EQ(j["capabilities"], json::array({"completion"}));
    EXPECT_FALSE(j.contains("tensors"));
  }
  const json v = ok(post("/api/show", {{"model", "stories260K"}, {"verbose", true}}));
  EXPECT_EQ(v["model_info"]["tokenizer.ggml.tokens"].size(), 512u);
  EXPECT_FALSE(v["tensors"].empty());
}

TEST_F(OllamaTest, VersionAndPs) {
  auto c = server_->client();
  const json v = ok(c.Get("/api/version"));
  ASSERT_TRUE(v["version"].is_string());
  EXPECT_FALSE(v["version"].get<std::string>().empty());
  const json ps = ok(c.Get("/api/ps"));
  ASSERT_EQ(ps["models"].size(), 1u);
  const json& m = ps["models"][0];
  EXPECT_EQ(m["name"], "stories260K:latest");
  EXPECT_GT(m["size"].get<int64_t>(), 0);
  EXPECT_EQ(m["size_vram"], 0);
  EXPECT_TRUE(is_rfc3339_nano(m["expires_at"].get<std::string>()));
  EXPECT_EQ(m["context_length"], 256);
  EXPECT_EQ(m["details"]["family"], "llama");
}

std::vector<double> vec(const json& a) { return a.get<std::vector<double>>(); }

TEST_F(OllamaTest, ApiEmbed) {
  const json j = ok(post("/api/embed", {{"model", "stories260K"},
                                        {"input", {"Once upon a time", "Once upon a time",
                                                   "The dog ran to the park"}}}));
  EXPECT_EQ(j["model"], "stories260K");
  ASSERT_EQ(j["embeddings"].size(), 3u);
  for (const auto& e : j["embeddings"]) {
    ASSERT_EQ(e.size(), static_cast<size_t>(kNEmbd));
    EXPECT_NEAR(norm(vec(e)), 1.0, 1e-5);
  }
  EXPECT_EQ(j["embeddings"][0], j["embeddings"][1]);
  EXPECT_NE(j["embeddings"][0], j["embeddings"][2]);
  EXPECT_GT(j["prompt_eval_count"].get<int64_t>(), 0);
  EXPECT_TRUE(j["total_duration"].is_number_integer());

  // A single string gives one vector, the same.
  const json one = ok(post("/api/embed", {{"model", "stories260K"}, {"input", "Once upon a time"}}));
  ASSERT_EQ(one["embeddings"].size(), 1u);
  EXPECT_EQ(one["embeddings"][0], j["embeddings"][0]);

  // The legacy endpoint: one unnormalized vector in the same direction.
  const json legacy =
      ok(post("/api/embeddings", {{"model", "stories260K"}, {"prompt", "Once upon a time"}}));
  const std::vector<double> raw = vec(legacy["embedding"]);
  ASSERT_EQ(raw.size(), static_cast<size_t>(kNEmbd));
  const double n = norm(raw);
  const std::vector<double> unit = vec(j["embeddings"][0]);
  for (size_t i = 0; i < raw.size(); ++i) EXPECT_NEAR(raw[i] / n, unit[i], 1e-5);

  // Too long without truncation: 400; with truncation (the default) it fits.
  std::string lng;
  for (int i = 0; i < 300; ++i) lng += "cat ";
  expect_ollama_error(post("/api/embed", {{"model", "stories260K"}, {"input", lng},
                                          {"truncate", false}}),
                      400);
  const json t = ok(post("/api/embed", {{"model", "stories260K"}, {"input", lng}}));
  EXPECT_EQ(t["prompt_eval_count"], 256);
}

class EmbeddingsTest : public OllamaTest {};

TEST_F(EmbeddingsTest, OpenAiEmbeddings) {
  const json j = ok(post("/v1/embeddings", {{"model", "stories260K"},
                                            {"input", "Once upon a time"}}));
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "stories260K");
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["object"], "embedding");
  EXPECT_EQ(j["data"][0]["index"], 0);
  const std::vector<double> a = vec(j["data"][0]["embedding"]);
  ASSERT_EQ(a.size(), static_cast<size_t>(kNEmbd));
  EXPECT_NEAR(norm(a), 1.0, 1e-5);
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 0);
  EXPECT_EQ(j["usage"]["total_tokens"], j["usage"]["prompt_tokens"]);

  // Several inputs, in order: same text, same vector; other text, another.
  const json many = ok(post("/v1/embeddings", {{"model", "stories260K"},
                                               {"input", {"The dog ran to the park",
                                                          "Once upon a time"}},
                                               {"dimensions", kNEmbd}}));
  ASSERT_EQ(many["data"].size(), 2u);
  EXPECT_EQ(many["data"][1]["index"], 1);
  EXPECT_EQ(vec(many["data"][1]["embedding"]), a);
  EXPECT_NE(vec(many["data"][0]["embedding"]), a);

  // Token ids, as the tokenizer gives them with the special tokens a prompt gets: the same.
  const json tok = ok(post("/loupe/v1/tokenize", {{"model", "stories260K"},
                                                  {"content", "Once upon a time"},
                                                  {"add_special", true},
                                                  {"parse_special", false}}));
  const json ids = ok(post("/v1/embeddings", {{"model", "stories260K"}, {"input", tok["tokens"]}}));
  EXPECT_EQ(vec(ids["data"][0]["embedding"]), a);
  const json nested = ok(post("/v1/embeddings", {{"model", "stories260K"},
                                                 {"input", json::array({tok["tokens"]})}}));
  EXPECT_EQ(vec(nested["data"][0]["embedding"]), a);
  EXPECT_EQ(ids["usage"]["prompt_tokens"], tok["tokens"].size());

  // base64: little-endian float32.
  const json b = ok(post("/v1/embeddings", {{"model", "stories260K"},
                                            {"input", "Once upon a time"},
                                            {"encoding_format", "base64"}}));
  const std::string text = b["data"][0]["embedding"];
  static const std::string kDigits =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : text) {
    if (ch == '=') break;
    acc = (acc << 6) | static_cast<uint32_t>(kDigits.find(ch));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  ASSERT_EQ(bytes.size(), static_cast<size_t>(kNEmbd) * 4);
  for (int64_t i = 0; i < kNEmbd; ++i) {
    float f;
    std::memcpy(&f, bytes.data() + i * 4, 4);
    EXPECT_NEAR(f, a[static_cast<size_t>(i)], 1e-6);
  }
}

TEST_F(EmbeddingsTest, BadInputIs400) {
  auto bad = [&](const json& body, const std::string& needle = "") {
    auto r = post("/v1/embeddings", body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;
    const json j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j["error"]["message"].is_string()) << r->body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(needle), std::string::npos)
        << r->body;
  };
  bad({{"model", "stories260K"}, {"input", "x"}, {"dimensions", 32}}, "64");
  bad({{"model", "stories260K"}, {"input", "x"}, {"encoding_format", "hex"}});
  bad({{"model", "stories260K"}, {"input", json::array()}});
  bad({{"model", "stories260K"}, {"input", ""}});
  bad({{"model", "stories260K"}, {"input", {1, 2, 99999}}}, "99999");
  bad({{"model", "stories260K"}, {"input", {{"x", 1}}}});
  std::string lng;
  for (int i = 0; i < 300; ++i) lng += "cat ";
  bad({{"model", "stories260K"}, {"input", lng}}, "the context is 256 tokens");
}

void expect_valid_ollama_message(const json& msg) {
  EXPECT_EQ(msg["role"], "assistant");
  EXPECT_TRUE(msg["content"].is_string()) << msg;
  if (msg.contains("thinking")) {
    EXPECT_TRUE(msg["thinking"].is_string()) << msg;
  }
  if (msg.contains("tool_calls")) {
    for (const auto& c : msg["tool_calls"]) {
      EXPECT_TRUE(c["function"]["name"].is_string()) << msg;
      EXPECT_TRUE(c["function"]["arguments"].is_object()) << msg;
    }
  }
}

// Qwen3's own template: capabilities, tools in the prompt, well-formed replies with tools,
// and a tool-call history (Ollama's shape: arguments as an object) stored with its calls.
TEST(OllamaTools, QwenTemplate) {
  LOUPE_REQUIRE_TESTDATA();
  const std::string dir = testing::make_temp_dir();
  const std::string path = model_with_template("models2026/qwen3-tok512.Q8_0.gguf",
                                               "templates2026/Qwen-Qwen3-0.6B.jinja", dir);
  ASSERT_FALSE(path.empty());
  ServerProcess server({"-m", path, "-c", "512"});
  ASSERT_TRUE(server.wait_ready()) << server.log();
  auto c = server.client();
  auto post = [&](const std::string& route, const json& body) {
    auto r = c.Post(route, body.dump(), "application/json");
    EXPECT_TRUE(r);
    if (!r) return json();
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body, nullptr, false);
  };
  const json show = post("/api/show", {{"model", "model"}});
  EXPECT_EQ(show["capabilities"], json::array({"completion", "tools", "thinking"}));

  const json tools = json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "description": "Weather in a city", "parameters": {"type": "object",
      "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])");
  const json t = post("/loupe/v1/template", {{"model", "model"},
                                             {"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                                             {"tools", tools},
                                             {"with_pieces", false}});
  EXPECT_EQ(t["chat_template"], "model");
  EXPECT_NE(t["prompt"].get<std::string>().find("get_weather"), std::string::npos) << t["prompt"];

  json body = {{"model", "model:latest"},
               {"messages", {{{"role", "user"}, {"content", "Weather in Bern?"}}}},
               {"tools", tools},
               {"think", false},
               {"stream", false},
               {"options", {{"num_predict", 16}, {"seed", 1}}}};
  const json j = post("/api/chat", body);
  EXPECT_EQ(j["done"], true);
  expect_valid_ollama_message(j["message"]);

  body["stream"] = true;
  auto r = c.Post("/api/chat", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const std::vector<json> lines = ndjson_lines(r->body);
  ASSERT_FALSE(lines.empty());
  for (const json& line : lines) expect_valid_ollama_message(line["message"]);
  EXPECT_EQ(lines.back()["done"], true);

  body["stream"] = false;
  body["messages"] = json::parse(R"([
    {"role": "user", "content": "Weather in Lucerne?"},
    {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather",
      "arguments": {"city": "Lucerne"}}}]},
    {"role": "tool", "tool_name": "get_weather", "content": "{\"temp\": 21}"}])");
  expect_valid_ollama_message(post("/api/chat", body)["message"]);
  server.stop();
  auto st = store::Store::open(server.data());
  ASSERT_TRUE(st) << st.status().message();
  auto found = (*st)->search("Lucerne");
  ASSERT_TRUE(found);
  ASSERT_GE(found->size(), 1u);
  auto conv = (*st)->get((*found)[0].id);
  ASSERT_TRUE(conv && conv->has_value());
  ASSERT_GE((*conv)->messages.size(), 3u);
  EXPECT_NE((*conv)->messages[1].extra.find("get_weather"), std::string::npos)
      << (*conv)->messages[1].extra;
  EXPECT_NE((*conv)->messages[2].extra.find("\"name\":\"get_weather\""), std::string::npos)
      << (*conv)->messages[2].extra;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace loupe
