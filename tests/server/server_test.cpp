// `loupe serve` end to end: a child process on a free loopback port, driven over HTTP.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/process.h"
#include "common/testdata.h"
#include "serve_process.h"
#include "gguf/file.h"
#include "gguf/writer.h"
#include "server/server.h"
#include "store/store.h"

namespace loupe {
namespace {

using json = nlohmann::json;

using testing::make_temp_dir;
using testing::ServerProcess;
using testing::model_with_template;

const char* kModel = "stories260K";

json chat_body(bool stream = false) {
  return json{{"model", kModel},
              {"messages", {{{"role", "user"}, {"content", "Once upon a time"}}}},
              {"temperature", 0},
              {"max_tokens", 8},
              {"stream", stream}};
}

class ServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (testing::testdata_dir().empty()) return;
    server_ = new ServerProcess({"--max-body", "4096", "-c", "256"});
    ready_ = server_->wait_ready();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    LOUPE_REQUIRE_TESTDATA();
    ASSERT_TRUE(ready_) << server_->log();
  }
  static httplib::Result post(const json& body, const httplib::Headers& headers = {}) {
    auto c = server_->client();
    return c.Post("/v1/chat/completions", headers, body.dump(), "application/json");
  }

  static ServerProcess* server_;
  static bool ready_;
};
ServerProcess* ServeTest::server_ = nullptr;
bool ServeTest::ready_ = false;

void expect_openai_error(const httplib::Result& r, int status) {
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, status) << r->body;
  const json j = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r->body;
  ASSERT_TRUE(j.contains("error")) << r->body;
  EXPECT_TRUE(j["error"]["message"].is_string());
  EXPECT_TRUE(j["error"]["type"].is_string());
  EXPECT_TRUE(j["error"].contains("code"));
  EXPECT_FALSE(r->has_header("Access-Control-Allow-Origin"));
}

TEST_F(ServeTest, ListsTheModel) {
  auto c = server_->client();
  auto r = c.Get("/v1/models");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["id"], kModel);
  EXPECT_FALSE(r->has_header("Access-Control-Allow-Origin"));
}

TEST_F(ServeTest, ChatNonStreamingIsDeterministicAndStored) {
  auto r1 = post(chat_body());
  ASSERT_TRUE(r1);
  ASSERT_EQ(r1->status, 200) << r1->body;
  const json j = json::parse(r1->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], kModel);
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  const std::string content = j["choices"][0]["message"]["content"];
  EXPECT_FALSE(content.empty());
  EXPECT_TRUE(j["choices"][0]["finish_reason"] == "length" ||
              j["choices"][0]["finish_reason"] == "stop");
  EXPECT_LE(j["usage"]["completion_tokens"].get<int>(), 8);
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 0);
  EXPECT_EQ(j["usage"]["total_tokens"].get<int>(),
            j["usage"]["prompt_tokens"].get<int>() + j["usage"]["completion_tokens"].get<int>());
  // stories260K has no chat template: ChatML fallback, said in the loupe extra.
  EXPECT_EQ(j["loupe"]["chat_template"], "chatml-fallback");
  ASSERT_TRUE(j["loupe"]["conversation_id"].is_number_integer());
  const int64_t conv = j["loupe"]["conversation_id"];

  // Stored (committed) before the response arrived.
  auto st = store::Store::open(server_->data());
  ASSERT_TRUE(st) << st.status().message();
  auto c = (*st)->get(conv);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->has_value());
  ASSERT_EQ((*c)->messages.size(), 2u);
  EXPECT_EQ((*c)->messages[0].content, "Once upon a time");
  EXPECT_EQ((*c)->messages[1].role, "assistant");
  EXPECT_EQ((*c)->messages[1].content, content);
  ASSERT_EQ((*c)->exchanges.size(), 1u);
  EXPECT_EQ((*c)->exchanges[0].model_sha256.size(), 64u);
  EXPECT_FALSE((*c)->exchanges[0].loupe_version.empty());
  EXPECT_NE((*c)->exchanges[0].sampler_json.find("temperature"), std::string::npos);

  // The same request again: same answer, a new conversation (it extends none).
  auto r2 = post(chat_body());
  ASSERT_TRUE(r2);
  const json j2 = json::parse(r2->body);
  EXPECT_EQ(j2["choices"][0]["message"]["content"], content);
  const int64_t conv2 = j2["loupe"]["conversation_id"];
  EXPECT_NE(conv2, conv);

  // A follow-up whose messages extend a stored conversation continues it (the newest of
  // equal histories).
  json follow = chat_body();
  follow["messages"].push_back({{"role", "assistant"}, {"content", content}});
  follow["messages"].push_back({{"role", "user"}, {"content", "And then?"}});
  auto r3 = post(follow);
  ASSERT_TRUE(r3);
  ASSERT_EQ(r3->status, 200) << r3->body;
  EXPECT_EQ(json::parse(r3->body)["loupe"]["conversation_id"], conv2);
  auto c2 = (*st)->get(conv2);
  ASSERT_TRUE(c2 && c2->has_value());
  EXPECT_EQ((*c2)->messages.size(), 4u);
  EXPECT_EQ((*c2)->exchanges.size(), 2u);
}

TEST_F(ServeTest, StopStringsAndSeeds) {
  auto r = post(chat_body());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const std::string content = json::parse(r->body)["choices"][0]["message"]["content"];
  ASSERT_GE(content.size(), 4u);
  const std::string stop = content.substr(content.size() / 2, 2);
  json body = chat_body();
  body["stop"] = {stop, "zzzz-never"};
  auto s = post(body);
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200) << s->body;
  const json js = json::parse(s->body);
  EXPECT_EQ(js["choices"][0]["message"]["content"], content.substr(0, content.find(stop)));
  EXPECT_EQ(js["choices"][0]["finish_reason"], "stop");

  json seeded = chat_body();
  seeded["temperature"] = 1.0;
  seeded["seed"] = 1234;
  seeded["max_tokens"] = 16;
  auto a = post(seeded);
  auto b = post(seeded);
  ASSERT_TRUE(a && b);
  const json ja = json::parse(a->body), jb = json::parse(b->body);
  EXPECT_EQ(ja["choices"][0]["message"]["content"], jb["choices"][0]["message"]["content"]);
  EXPECT_EQ(ja["loupe"]["seed"], 1234);
}

TEST_F(ServeTest, TextCompletions) {
  json body = {{"model", kModel}, {"prompt", "Once upon a time"}, {"temperature", 0},
               {"max_tokens", 8}, {"logprobs", 2}};
  auto c = server_->client();
  auto r = c.Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "text_completion");
  const std::string text = j["choices"][0]["text"];
  EXPECT_FALSE(text.empty());
  const json& lp = j["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"].size(), j["usage"]["completion_tokens"].get<size_t>());
  EXPECT_EQ(lp["token_logprobs"].size(), lp["tokens"].size());
  ASSERT_FALSE(lp["top_logprobs"].empty());
  EXPECT_LE(lp["top_logprobs"][0].size(), 2u);

  body["stream"] = true;
  body.erase("logprobs");
  auto s = c.Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200) << s->body;
  std::string streamed;
  size_t pos = 0;
  bool done = false;
  while (pos < s->body.size()) {
    const size_t end = s->body.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos);
    const std::string data = s->body.substr(pos + 6, end - pos - 6);
    pos = end + 2;
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    const json chunk = json::parse(data);
    EXPECT_EQ(chunk["object"], "text_completion");
    streamed += chunk["choices"][0]["text"].get<std::string>();
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(streamed, text);
  expect_openai_error(c.Post("/v1/completions", R"({"model":"stories260K"})", "application/json"),
                      400);
}

TEST_F(ServeTest, StreamsServerSentEvents) {
  json body = chat_body(true);
  body["stream_options"] = {{"include_usage", true}};
  auto r = post(body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  std::vector<std::string> events;
  size_t pos = 0;
  while (pos < r->body.size()) {
    const size_t end = r->body.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos) << "unterminated event in " << r->body;
    const std::string ev = r->body.substr(pos, end - pos);
    ASSERT_EQ(ev.rfind("data: ", 0), 0u) << ev;
    events.push_back(ev.substr(6));
    pos = end + 2;
  }
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string id, text;
  int finishes = 0;
  bool usage = false;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json c = json::parse(events[i]);
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    if (id.empty()) id = c["id"];
    EXPECT_EQ(c["id"], id);
    if (c["choices"].empty()) {
      usage = true;
      EXPECT_EQ(i + 2, events.size()) << "usage chunk must be last";
      EXPECT_GT(c["usage"]["completion_tokens"].get<int>(), 0);
      continue;
    }
    const json& d = c["choices"][0]["delta"];
    if (d.contains("content")) text += d["content"].get<std::string>();
    if (!c["choices"][0]["finish_reason"].is_null()) ++finishes;
  }
  EXPECT_TRUE(usage);
  EXPECT_EQ(finishes, 1);
  // Same text as the non-streaming answer.
  auto r2 = post(chat_body());
  ASSERT_TRUE(r2);
  EXPECT_EQ(json::parse(r2->body)["choices"][0]["message"]["content"], text);
}

TEST_F(ServeTest, LogprobsHaveOpenAIShape) {
  json body = chat_body();
  body["logprobs"] = true;
  body["top_logprobs"] = 3;
  auto r = post(body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  const json& content = j["choices"][0]["logprobs"]["content"];
  ASSERT_TRUE(content.is_array());
  EXPECT_EQ(static_cast<int>(content.size()), j["usage"]["completion_tokens"].get<int>());
  for (const auto& item : content) {
    EXPECT_TRUE(item["token"].is_string());
    EXPECT_LE(item["logprob"].get<double>(), 0.0);
    EXPECT_TRUE(item["bytes"].is_array());
    EXPECT_EQ(item["top_logprobs"].size(), 3u);
  }
}

TEST_F(ServeTest, JsonSchemaOutputParses) {
  json body = chat_body();
  body["max_tokens"] = 64;
  body["response_format"] = {
      {"type", "json_schema"},
      {"json_schema",
       {{"name", "person"},
        {"schema",
         {{"type", "object"},
          {"properties", {{"name", {{"type", "string"}, {"maxLength", 6}}}}},
          {"required", {"name"}}}}}}};
  auto r = post(body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const std::string content = json::parse(r->body)["choices"][0]["message"]["content"];
  const json parsed = json::parse(content, nullptr, false);
  ASSERT_TRUE(parsed.is_object()) << content;
  EXPECT_TRUE(parsed["name"].is_string()) << content;
}

TEST_F(ServeTest, ErrorStatuses) {
  auto c = server_->client();
  expect_openai_error(c.Post("/v1/chat/completions", "{not json", "application/json"), 400);
  json bad = chat_body();
  bad["temperature"] = 5;
  expect_openai_error(post(bad), 400);
  bad = chat_body();
  bad["messages"] = json::array();
  expect_openai_error(post(bad), 400);
  bad = chat_body();
  bad["top_logprobs"] = 2;
  expect_openai_error(post(bad), 400);
  bad = chat_body();
  bad["stop"] = {"a", "b", "c", "d", "e"};
  expect_openai_error(post(bad), 400);
  bad = chat_body();
  bad["logit_bias"] = {{"999999999", 5}};
  expect_openai_error(post(bad), 400);
  bad = chat_body();
  bad["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "x"}}}};
  expect_openai_error(post(bad), 400);
  bad = chat_body();
  bad["model"] = "no-such-model";
  expect_openai_error(post(bad), 404);
  // Over --max-body 4096.
  json big = chat_body();
  big["messages"][0]["content"] = std::string(8000, 'a');
  expect_openai_error(post(big), 413);
  // A prompt longer than the context (-c 256): 400 naming both numbers.
  json longer = chat_body();
  std::string words;
  for (int i = 0; i < 400; ++i) words += "hello ";
  longer["messages"][0]["content"] = words;
  auto lr = post(longer);
  expect_openai_error(lr, 400);
  ASSERT_TRUE(lr);
  EXPECT_NE(lr->body.find("the context is 256 tokens"), std::string::npos) << lr->body;
  // DNS rebinding: a Host that is not loopback or --host.
  expect_openai_error(post(chat_body(), {{"Host", "evil.example.com"}}), 421);
  for (const char* host : {"localhost:1234", "127.0.0.1", "[::1]:8080"}) {
    auto ok = server_->client().Get("/v1/models", {{"Host", host}});
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << host;
  }
  expect_openai_error(server_->client().Get("/v1/models", {{"Host", "127.0.0.1.evil.com"}}),
                      421);
  expect_openai_error(server_->client().Get("/v1/nothing-here"), 404);
}

TEST_F(ServeTest, SessionsCommandListsShowsAndDeletes) {
  auto r = post(chat_body());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const int64_t conv = json::parse(r->body)["loupe"]["conversation_id"];
  auto st = store::Store::open(server_->data());
  ASSERT_TRUE(st);
  auto stored = (*st)->list();
  ASSERT_TRUE(stored);

  auto list = testing::run_loupe({"sessions", "list", "--data", server_->data()});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  std::vector<std::string> lines;
  std::istringstream in(list.out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), stored->size()) << list.out;  // no header
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0].substr(0, lines[0].find('\t')), std::to_string((*stored)[0].id));

  auto show = testing::run_loupe({"sessions", "show", std::to_string(conv), "--data",
                                  server_->data()});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("Once upon a time"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("model_sha256"), std::string::npos) << show.out;

  auto del = testing::run_loupe({"sessions", "delete", std::to_string(conv), "--data",
                                 server_->data()});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  auto gone = (*st)->get(conv);
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->has_value());
  auto again = testing::run_loupe({"sessions", "delete", std::to_string(conv), "--data",
                                   server_->data()});
  EXPECT_NE(again.exit_code, 0);
}

TEST(ServeAuth, ApiKeyIsRequired) {
  LOUPE_REQUIRE_TESTDATA();
  ServerProcess s({"--api-key", "sekrit", "--no-store"});
  ASSERT_TRUE(s.wait_ready()) << s.log();
  auto c = s.client();
  const std::string body = chat_body().dump();
  expect_openai_error(c.Post("/v1/chat/completions", body, "application/json"), 401);
  expect_openai_error(c.Post("/v1/chat/completions", {{"Authorization", "Bearer wrong"}}, body,
                             "application/json"),
                      401);
  auto r = c.Post("/v1/chat/completions", {{"Authorization", "Bearer sekrit"}}, body,
                  "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(json::parse(r->body)["loupe"]["conversation_id"].is_null());
}

TEST(ServeCrash, KillNineLosesNoAnsweredExchange) {
  LOUPE_REQUIRE_TESTDATA();
  const std::string data = make_temp_dir();
  std::vector<int64_t> answered;
  {
    ServerProcess s({}, data);
    ASSERT_TRUE(s.wait_ready()) << s.log();
    for (int i = 0; i < 5; ++i) {
      json body = chat_body(i % 2 == 1);
      body["messages"][0]["content"] = "Story " + std::to_string(i);
      auto c = s.client();
      auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200) << r->body;
    }
    // A request in flight while the process dies.
    std::thread inflight([&] {
      json body = chat_body(true);
      body["max_tokens"] = 200;
      auto c = s.client();
      c.set_read_timeout(5);
      (void)c.Post("/v1/chat/completions", body.dump(), "application/json");
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    s.crash();
    inflight.join();
  }
  ServerProcess again({}, data);  // restarts on the same database
  ASSERT_TRUE(again.wait_ready()) << again.log();
  again.stop();
  auto st = store::Store::open(data);
  ASSERT_TRUE(st) << st.status().message();
  auto check = (*st)->integrity_check();
  ASSERT_TRUE(check);
  EXPECT_EQ(*check, "ok");
  auto list = (*st)->list();
  ASSERT_TRUE(list);
  std::set<std::string> titles;
  for (const auto& c : *list) titles.insert(c.title);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(titles.count("Story " + std::to_string(i)), 1u) << i;
  st->reset();
  std::error_code ec;
  std::filesystem::remove_all(data, ec);
}

TEST(ServeOptions, RefusesNonLoopbackWithoutKey) {
  EXPECT_TRUE(server::is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(server::is_loopback_host("localhost"));
  EXPECT_TRUE(server::is_loopback_host("::1"));
  EXPECT_FALSE(server::is_loopback_host("0.0.0.0"));
  server::ServerOptions o;
  o.host = "0.0.0.0";
  o.model_paths = {"/nonexistent.gguf"};
  Status s = server::serve(o);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--api-key"), std::string::npos) << s.message();
  EXPECT_EQ(server::model_id_from_path("/a/b/Qwen3-0.6B-Q8_0.gguf"), "Qwen3-0.6B-Q8_0");
  EXPECT_TRUE(server::constant_time_equals("abc", "abc"));
  EXPECT_FALSE(server::constant_time_equals("abc", "abd"));
  EXPECT_FALSE(server::constant_time_equals("abc", "abcd"));
}

// ---- tools ---------------------------------------------------------------------------------

json weather_tools() {
  return json::parse(R"([
    {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
      "parameters": {"type": "object",
        "properties": {"city": {"type": "string", "maxLength": 8},
                       "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_time",
      "parameters": {"type": "object", "properties": {"zone": {"type": "integer"}},
                     "required": ["zone"]}}}])");
}

// The call's arguments parse and match get_weather's / get_time's schema.
void expect_valid_call(const json& call) {
  ASSERT_TRUE(call.is_object()) << call;
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["id"].get<std::string>().rfind("call_", 0), 0u) << call;
  const std::string name = call["function"]["name"];
  const json args = json::parse(call["function"]["arguments"].get<std::string>(), nullptr, false);
  ASSERT_TRUE(args.is_object()) << call;
  if (name == "get_weather") {
    ASSERT_TRUE(args["city"].is_string()) << args;
    EXPECT_LE(args["city"].get<std::string>().size(), 8u * 4);
    if (args.contains("unit")) {
      EXPECT_TRUE(args["unit"] == "celsius" || args["unit"] == "fahrenheit") << args;
    }
    for (const auto& [k, v] : args.items()) EXPECT_TRUE(k == "city" || k == "unit") << k;
  } else {
    EXPECT_EQ(name, "get_time");
    EXPECT_TRUE(args["zone"].is_number_integer()) << args;
    EXPECT_EQ(args.size(), 1u);
  }
}

std::vector<json> sse_chunks(const std::string& body) {
  std::vector<json> out;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    const std::string ev = body.substr(pos + 6, end - pos - 6);
    pos = end + 2;
    if (ev != "[DONE]") out.push_back(json::parse(ev));
  }
  return out;
}

TEST_F(ServeTest, ToolChoiceRequiredForcesAWellFormedCall) {
  json body = chat_body();
  body["max_tokens"] = 120;
  body["tools"] = weather_tools();
  body["tool_choice"] = "required";
  body["parallel_tool_calls"] = false;
  auto r = post(body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  const json& choice = j["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls") << r->body;
  EXPECT_TRUE(choice["message"]["content"].is_null()) << r->body;
  ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u) << r->body;
  expect_valid_call(choice["message"]["tool_calls"][0]);

  // A named function is the one called.
  body["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_time"}}}};
  body["seed"] = 3;
  r = post(body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json call = json::parse(r->body)["choices"][0]["message"]["tool_calls"][0];
  EXPECT_EQ(call["function"]["name"], "get_time") << r->body;
  expect_valid_call(call);
}

TEST_F(ServeTest, ToolHistoryIsAcceptedAndToolChoiceNoneIsPlain) {
  json body = chat_body();
  body["tools"] = weather_tools();
  body["messages"] = json::parse(R"([
    {"role": "user", "content": "Weather in Bern?"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
      "function": {"name": "get_weather", "arguments": "{\"city\": \"Bern\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"}])");
  auto r = post(body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  body["tool_choice"] = "none";
  r = post(body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_TRUE(j["choices"][0]["message"]["content"].is_string());
  EXPECT_FALSE(j["choices"][0]["message"].contains("tool_calls"));
  EXPECT_NE(j["choices"][0]["finish_reason"], "tool_calls");
}

TEST_F(ServeTest, MalformedToolsAre400) {
  const std::vector<json> bad_tools = {
      json("not an array"),
      json::parse(R"([{"type": "function"}])"),
      json::parse(R"([{"type": "retrieval", "function": {"name": "f"}}])"),
      json::parse(R"([{"type": "function", "function": {"name": 5}}])"),
      json::parse(R"([{"type": "function", "function": {"name": "f", "parameters": "x"}}])"),
      json::parse(R"([{"type": "function", "function": {"name": "f"}},
                      {"type": "function", "function": {"name": "f"}}])")};
  for (const json& tools : bad_tools) {
    json body = chat_body();
    body["tools"] = tools;
    expect_openai_error(post(body), 400);
  }
  const std::vector<json> bad_choice = {
      json("sometimes"), json{{"type", "function"}, {"function", {{"name", "nope"}}}},
      json{{"type", "function"}}, json(5)};
  for (const json& choice : bad_choice) {
    json body = chat_body();
    body["tools"] = weather_tools();
    body["tool_choice"] = choice;
    expect_openai_error(post(body), 400);
  }
  json body = chat_body();
  body["tool_choice"] = "required";  // without tools
  expect_openai_error(post(body), 400);
  body = chat_body();
  body["messages"] = json::parse(
      R"([{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": 1}}]}])");
  expect_openai_error(post(body), 400);
  // A parameters schema the grammar cannot honour, when the call is forced.
  body = chat_body();
  body["tools"] = json::parse(R"([{"type": "function", "function": {"name": "f",
      "parameters": {"type": "object", "properties": {"a": {"type": "string",
      "pattern": "^x+$"}}}}}])");
  body["tool_choice"] = "required";
  expect_openai_error(post(body), 400);
}

TEST_F(ServeTest, StreamingToolCallsEndWithFinishReasonToolCalls) {
  json body = chat_body(true);
  body["max_tokens"] = 120;
  body["tools"] = weather_tools();
  body["tool_choice"] = "required";
  auto r = post(body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->body.find("data: [DONE]"), std::string::npos);
  const std::vector<json> chunks = sse_chunks(r->body);
  ASSERT_GE(chunks.size(), 2u);
  std::vector<json> calls;
  std::string finish;
  for (const json& c : chunks) {
    if (c["choices"].empty()) continue;
    const json& ch = c["choices"][0];
    if (ch["delta"].contains("tool_calls"))
      for (const auto& t : ch["delta"]["tool_calls"]) calls.push_back(t);
    if (!ch["finish_reason"].is_null()) finish = ch["finish_reason"];
  }
  EXPECT_EQ(finish, "tool_calls") << r->body;
  ASSERT_GE(calls.size(), 1u) << r->body;
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i]["index"], i);
    json call = calls[i];
    call.erase("index");
    expect_valid_call(call);
  }
}

// Qwen3's own template: the tools reach the prompt, and the forced call comes back parsed from
// its <tool_call> syntax (streamed and not).
TEST(ServeTools, QwenTemplateToolCalls) {
  LOUPE_REQUIRE_TESTDATA();
  const std::string dir = make_temp_dir();
  const std::string path = model_with_template("models2026/qwen3-tok512.Q8_0.gguf",
                                               "templates2026/Qwen-Qwen3-0.6B.jinja", dir);
  ASSERT_FALSE(path.empty());
  ServerProcess server({"-m", path, "-c", "512"});
  ASSERT_TRUE(server.wait_ready()) << server.log();
  json body = chat_body();
  body["model"] = "model";
  body["max_tokens"] = 100;
  // One small tool: the template's tool preamble alone takes most of the 512-token context.
  body["tools"] = json::array({weather_tools()[1]});
  body["tool_choice"] = "required";
  body["parallel_tool_calls"] = false;
  auto c = server.client();
  auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["loupe"]["chat_template"], "model");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls") << r->body;
  ASSERT_EQ(j["choices"][0]["message"]["tool_calls"].size(), 1u) << r->body;
  expect_valid_call(j["choices"][0]["message"]["tool_calls"][0]);

  body["stream"] = true;
  r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  int n_calls = 0;
  std::string finish;
  for (const json& ch : sse_chunks(r->body)) {
    if (ch["choices"].empty()) continue;
    const json& d = ch["choices"][0]["delta"];
    if (d.contains("tool_calls")) n_calls += static_cast<int>(d["tool_calls"].size());
    if (!ch["choices"][0]["finish_reason"].is_null()) finish = ch["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(n_calls, 1) << r->body;
  EXPECT_EQ(finish, "tool_calls");

  // Without tool_choice the random model writes what it likes; the answer is still well formed.
  body["stream"] = false;
  body.erase("tool_choice");
  body["max_tokens"] = 16;
  r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  j = json::parse(r->body);
  EXPECT_TRUE(j["choices"][0]["message"]["content"].is_string() ||
              j["choices"][0]["message"].contains("tool_calls"));
  server.stop();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace loupe
