// Tool calls and reasoning in, through the chat templates, and out, through parse_reply.
//
// In: messages with tool calls, tool results and reasoning, and the tools list, rendered through
// engine::chat_context must match the jinja2 renderings of testdata/templates*/cases.json.
// Out: the assistant turn each template renders for a tool-call message is what the model would
// generate; parse_reply must recover the call (and the reasoning), and ReplyStream fed one byte
// at a time must agree with it.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "chat/template.h"
#include "common/testdata.h"
#include "engine/chat_output.h"
#include "engine/prompt.h"

namespace loupe::engine {
namespace {

using nlohmann::ordered_json;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

const std::map<std::string, ordered_json>& all_cases() {
  static const std::map<std::string, ordered_json> cases = [] {
    std::map<std::string, ordered_json> m;
    for (const char* f : {"templates/cases.json", "templates2026/cases.json"}) {
      const ordered_json doc = ordered_json::parse(read_text(testing::testdata_path(f)));
      for (const auto& c : doc["cases"]) m[c["id"].get<std::string>()] = c;
    }
    return m;
  }();
  return cases;
}

// A cases.json message as an OpenAI client would send it (arguments as JSON text).
Message to_message(const ordered_json& j) {
  Message m;
  m.role = j["role"].get<std::string>();
  if (j.contains("content") && j["content"].is_string()) m.content = j["content"];
  if (j.contains("reasoning_content")) m.reasoning_content = j["reasoning_content"];
  if (j.contains("tool_call_id")) m.tool_call_id = j["tool_call_id"];
  if (j.contains("name")) m.name = j["name"];
  if (j.contains("tool_calls"))
    for (const auto& c : j["tool_calls"]) {
      const auto& args = c["function"]["arguments"];
      m.tool_calls.push_back({c.value("id", ""), c["function"]["name"].get<std::string>(),
                              args.is_string() ? args.get<std::string>() : args.dump()});
    }
  return m;
}

// Every case whose messages carry tool calls, tool results or reasoning, or that passes tools.
// Excluded: "_strargs" (arguments given as a JSON *string*; Loupe passes parsed objects, as
// llama.cpp does) and "tools_call_result" of templates/ (content null there, "" here).
TEST(ChatRender, ToolsToolCallsAndReasoningMatchJinja2) {
  LOUPE_REQUIRE_TESTDATA();
  chat::RenderOptions ro;
  ro.now = chat::DateTime{2024, 7, 26, 12, 0, 0};
  int n_checked = 0;
  for (const auto& [id, c] : all_cases()) {
    const std::string conv = c["conversation"];
    const bool relevant =
        conv.find("tool") != std::string::npos || conv.find("reasoning") != std::string::npos;
    if (!relevant || c["expected"].is_null()) continue;
    if (conv.find("strargs") != std::string::npos) continue;
    if (c["template"].get<std::string>().rfind("templates/", 0) == 0 && conv == "tools_call_result")
      continue;
    const std::string source = read_text(testing::testdata_path(c["template"]));
    auto tmpl = chat::Template::parse(source);
    ASSERT_TRUE(tmpl) << id;
    std::vector<Message> msgs;
    for (const auto& m : c["messages"]) msgs.push_back(to_message(m));
    ChatOptions opt;
    opt.tools = c["tools"];
    std::optional<std::string> bos, eos;
    for (auto it = c["context"].begin(); it != c["context"].end(); ++it) {
      if (it.key() == "bos_token")
        bos = it.value().get<std::string>();
      else if (it.key() == "eos_token")
        eos = it.value().get<std::string>();
      else
        opt.kwargs[it.key()] = it.value();
    }
    const ordered_json ctx =
        chat_context(msgs, c["add_generation_prompt"].get<bool>(), opt, source, bos, eos);
    auto out = tmpl->render(ctx, ro);
    ASSERT_TRUE(out) << id << ": " << out.status().message();
    EXPECT_EQ(*out, c["expected"].get<std::string>()) << id;
    ++n_checked;
  }
  EXPECT_GE(n_checked, 60);
}

TEST(ChatRender, ArgumentsAreAnObjectWhenTheyParse) {
  std::vector<Message> msgs = {{"user", "hi"}, {"assistant", ""}};
  msgs[1].tool_calls = {{"call_1", "f", R"({"a": 1})"}, {"call_2", "g", "not json"}};
  const ordered_json j = messages_json(msgs, false);
  EXPECT_TRUE(j[1]["tool_calls"][0]["function"]["arguments"].is_object());
  EXPECT_EQ(j[1]["tool_calls"][0]["type"], "function");
  EXPECT_EQ(j[1]["tool_calls"][1]["function"]["arguments"], "not json");
  EXPECT_FALSE(j[1].contains("thinking"));
}

struct Family {
  const char* template_file;  // detect_reply_format must name `format` for it
  ReplyFormat format;
  const char* case_id;  // the assistant turn between `begin` and `end` of its rendering
  const char* begin;
  const char* end;
  const char* text;  // used when case_id is null (the Python reference cannot render one)
  const char* reasoning;
  const char* call_id;  // "" : generated
};

constexpr const char* kThought =
    "The user wants the current weather in Zürich. I should call get_weather with unit celsius.";

const std::vector<Family>& families() {
  static const std::vector<Family> f = {
      {"templates2026/Qwen-Qwen3-0.6B.jinja", ReplyFormat::kQwen,
       "Qwen-Qwen3-0.6B/reasoning_tool_call/agp0", "<|im_start|>assistant\n", "<|im_end|>", nullptr,
       kThought, ""},
      {"templates2026/Qwen3.5-4B.jinja", ReplyFormat::kQwen3Coder,
       "Qwen3.5-4B/reasoning_tool_call/agp0", "<|im_start|>assistant\n", "<|im_end|>", nullptr,
       kThought, ""},
      {"templates2026/google-gemma-4-31B-it.jinja", ReplyFormat::kGemma,
       "google-gemma-4-31B-it/reasoning_tool_call/agp0", "<|turn>model\n", "<|tool_response>",
       nullptr, kThought, ""},
      {"templates2026/openai-gpt-oss-120b.jinja", ReplyFormat::kGptOss,
       "openai-gpt-oss-120b/reasoning_tool_call/agp0", "<|start|>assistant", "<|call|>", nullptr,
       "", ""},
      {"templates2026/deepseek-ai-DeepSeek-V3.1.jinja", ReplyFormat::kDeepSeekV31,
       "deepseek-ai-DeepSeek-V3.1/reasoning_tool_call/agp0", "<｜Assistant｜>",
       "<｜end▁of▁sentence｜>", nullptr, "", ""},
      {"templates2026/GLM-4.6.jinja", ReplyFormat::kGlm, "GLM-4.6/reasoning_tool_call/agp0",
       "<|assistant|>", "<|observation|>", nullptr, kThought, ""},
      {"templates2026/ibm-granite-granite-4.0.jinja", ReplyFormat::kGranite,
       "ibm-granite-granite-4.0/reasoning_tool_call/agp0",
       "<|start_of_role|>assistant<|end_of_role|>", "<|end_of_text|>", nullptr, "", ""},
      {"templates2026/Mistral-Small-3.2-24B-Instruct-2506.jinja", ReplyFormat::kMistral,
       "Mistral-Small-3.2-24B-Instruct-2506/tool_call_answer_id9/agp0", "[/INST]", "</s>", nullptr,
       "", "call12345"},
      {"templates2026/Kimi-K2-Instruct.jinja", ReplyFormat::kKimiK2, nullptr, nullptr, nullptr,
       // Template line 42 (its tool cases raise SecurityError in the immutable sandbox).
       "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0"
       "<|tool_call_argument_begin|>{\"city\": \"Zürich\", \"unit\": \"celsius\"}"
       "<|tool_call_end|><|tool_calls_section_end|>",
       "", "functions.get_weather:0"},
      {"templates2026/HuggingFaceTB-SmolLM3-3B.jinja", ReplyFormat::kSmolLM3, nullptr, nullptr,
       nullptr,
       "<think>\nThe user wants the current weather in Zürich. I should call get_weather with "
       "unit celsius.\n</think>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
       "{\"city\": \"Zürich\", \"unit\": \"celsius\"}}\n</tool_call>",
       kThought, ""},
      {"templates/NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", ReplyFormat::kQwen,
       "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use/tools_call_result/agp0",
       "<|im_start|>assistant\n", "<|im_end|>", nullptr, "", ""},
      {"templates/NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", ReplyFormat::kQwen,
       "NousResearch-Hermes-3-Llama-3.1-8B-tool_use/tools_call_result/agp0",
       "<|im_start|>assistant\n", "<|im_end|>", nullptr, "", ""},
      {"templates/Qwen-Qwen2.5-7B-Instruct.jinja", ReplyFormat::kQwen,
       "Qwen-Qwen2.5-7B-Instruct/tools_call_result_strargs/agp0", "<|im_start|>assistant\n",
       "<|im_end|>", nullptr, "", ""},
      {"templates/meta-llama-Llama-3.1-8B-Instruct.jinja", ReplyFormat::kLlama3,
       "meta-llama-Llama-3.1-8B-Instruct/tools_call_result/agp0", "assistant<|end_header_id|>\n\n",
       "<|eot_id|>", nullptr, "", ""},
      {"templates/meta-llama-Llama-3.2-3B-Instruct.jinja", ReplyFormat::kLlama3,
       "meta-llama-Llama-3.2-3B-Instruct/tools_call_result/agp0", "assistant<|end_header_id|>\n\n",
       "<|eot_id|>", nullptr, "", ""},
      {"templates/meta-llama-Llama-3.3-70B-Instruct.jinja", ReplyFormat::kLlama3,
       "meta-llama-Llama-3.3-70B-Instruct/tools_call_result_strargs/agp0",
       "assistant<|end_header_id|>\n\n", "<|eot_id|>", nullptr, "", ""},
      {"templates/meetkai-functionary-medium-v3.1.jinja", ReplyFormat::kFunctionaryV31,
       "meetkai-functionary-medium-v3.1/tools_call_result_strargs/agp0",
       "assistant<|end_header_id|>\n\n", "<|eom_id|>", nullptr, "", ""},
      {"templates/meetkai-functionary-medium-v3.2.jinja", ReplyFormat::kFunctionaryV32,
       "meetkai-functionary-medium-v3.2/tools_call_result_strargs/agp0",
       "assistant<|end_header_id|>\n\n", "<|eot_id|>", nullptr, "", ""},
      {"templates/fireworks-ai-llama-3-firefunction-v2.jinja", ReplyFormat::kFireFunctionV2,
       "fireworks-ai-llama-3-firefunction-v2/tools_call_result_strargs/agp0",
       "assistant<|end_header_id|>\n\n", "<|eot_id|>", nullptr, "", ""},
      {"templates/mistralai-Mistral-Nemo-Instruct-2407.jinja", ReplyFormat::kMistral,
       "mistralai-Mistral-Nemo-Instruct-2407/tools_call_result/agp0", "[/INST]", "</s>", nullptr,
       "", "call12345"},
      {"templates/CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja", ReplyFormat::kCommandR,
       "CohereForAI-c4ai-command-r7b-12-2024-tool_use/tools_call_result/agp0", "<|CHATBOT_TOKEN|>",
       "<|END_OF_TURN_TOKEN|>", nullptr, "", "0"},
      {"templates/CohereForAI-c4ai-command-r-plus-tool_use.jinja", ReplyFormat::kCommandR, nullptr,
       nullptr, nullptr,
       // Template lines 164-175.
       "\nAction:\n```json\n[\n    {\n        \"tool_name\": \"get_weather\",\n        "
       "\"parameters\": {\"city\": \"Zürich\", \"unit\": \"celsius\"}\n    }\n]```",
       "", ""},
      {"templates/deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", ReplyFormat::kDeepSeekR1,
       nullptr, nullptr, nullptr,
       // The template's tool-call line (it renders none for our cases).
       "<think>\nThe user wants the current weather in Zürich. I should call get_weather with "
       "unit "
       "celsius.\n</think>\n\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>"
       "get_weather\n```json\n{\"city\": \"Zürich\", \"unit\": \"celsius\"}\n```"
       "<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
       kThought, ""},
  };
  return f;
}

std::string reply_text(const Family& f) {
  if (f.case_id == nullptr) return f.text;
  const auto it = all_cases().find(f.case_id);
  if (it == all_cases().end() || it->second["expected"].is_null()) return "";
  const std::string e = it->second["expected"];
  const size_t b = e.find(f.begin);
  if (b == std::string::npos) return "";
  const size_t start = b + std::string(f.begin).size();
  const size_t end = e.find(f.end, start);
  return e.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// ReplyStream one byte at a time: same result, and its deltas concatenate to it.
ParsedReply stream_bytes(ReplyFormat format, std::string_view text, bool thinking_open) {
  ReplyStream s(format, thinking_open);
  std::string content, reasoning;
  for (char c : text) {
    ReplyStream::Delta d = s.push(std::string_view(&c, 1));
    content += d.content;
    reasoning += d.reasoning;
  }
  ReplyStream::Delta rest;
  ParsedReply p = s.finish(&rest);
  EXPECT_EQ(content + rest.content, p.content);
  EXPECT_EQ(reasoning + rest.reasoning, p.reasoning);
  return p;
}

void expect_same(const ParsedReply& a, const ParsedReply& b) {
  EXPECT_EQ(a.content, b.content);
  EXPECT_EQ(a.reasoning, b.reasoning);
  ASSERT_EQ(a.tool_calls.size(), b.tool_calls.size());
  for (size_t i = 0; i < a.tool_calls.size(); ++i) {
    EXPECT_EQ(a.tool_calls[i].name, b.tool_calls[i].name);
    EXPECT_EQ(a.tool_calls[i].arguments, b.tool_calls[i].arguments);
  }
}

TEST(ReplyParse, EveryFamilyRecoversTheTemplatesToolCall) {
  LOUPE_REQUIRE_TESTDATA();
  const ordered_json want_args = {{"city", "Zürich"}, {"unit", "celsius"}};
  for (const Family& f : families()) {
    SCOPED_TRACE(f.template_file);
    EXPECT_EQ(detect_reply_format(read_text(testing::testdata_path(f.template_file))), f.format)
        << reply_format_name(
               detect_reply_format(read_text(testing::testdata_path(f.template_file))));
    const std::string text = reply_text(f);
    ASSERT_FALSE(text.empty());
    const ParsedReply p = parse_reply(f.format, text);
    EXPECT_EQ(p.content, "") << text;
    EXPECT_EQ(p.reasoning, f.reasoning);
    ASSERT_EQ(p.tool_calls.size(), 1u) << text;
    EXPECT_EQ(p.tool_calls[0].name, "get_weather");
    EXPECT_EQ(ordered_json::parse(p.tool_calls[0].arguments), want_args);
    if (*f.call_id != '\0') {
      EXPECT_EQ(p.tool_calls[0].id, f.call_id);
    } else {
      EXPECT_EQ(p.tool_calls[0].id.rfind("call_", 0), 0u);
      EXPECT_EQ(p.tool_calls[0].id.size(), 29u);
    }
    expect_same(stream_bytes(f.format, text, false), p);
  }
}

TEST(ReplyParse, PlainTemplatesAreDetectedAsPlain) {
  LOUPE_REQUIRE_TESTDATA();
  for (const char* t :
       {"templates/google-gemma-2-2b-it.jinja", "templates/microsoft-Phi-3.5-mini-instruct.jinja"})
    EXPECT_EQ(detect_reply_format(read_text(testing::testdata_path(t))), ReplyFormat::kPlain) << t;
  EXPECT_EQ(detect_reply_format(chatml_template()), ReplyFormat::kPlain);
}

struct TextCase {
  ReplyFormat format;
  bool thinking_open;
  std::string text;
  std::string content, reasoning;
  std::vector<std::string> calls;  // names
};

TEST(ReplyParse, ReasoningContentAndCallsApart) {
  const std::vector<TextCase> cases = {
      {ReplyFormat::kPlain,
       false,
       "  just <think>text</think> ",
       "  just <think>text</think> ",
       "",
       {}},
      {ReplyFormat::kQwen, false, "<think>\nhmm\n</think>\n\nParis.", "Paris.", "hmm", {}},
      {ReplyFormat::kQwen,
       true,
       "hmm, let me see\n</think>\n\nParis.",
       "Paris.",
       "hmm, let me see",
       {}},
      {ReplyFormat::kQwen, true, "still thinking", "", "still thinking", {}},
      {ReplyFormat::kQwen,
       false,
       "Let me check.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n"
       "<tool_call>\n{\"name\": \"b\", \"arguments\": {\"x\": [1, 2]}}\n</tool_call>",
       "Let me check.",
       "",
       {"a", "b"}},
      {ReplyFormat::kDeepSeekV31, true, "thought</think>The answer.", "The answer.", "thought", {}},
      {ReplyFormat::kGptOss,
       false,
       "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final"
       "<|message|>Done.",
       "Done.",
       "Think.",
       {}},
      {ReplyFormat::kGptOss,
       false,
       "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>"
       "commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Bern\"}",
       "",
       "Need weather.",
       {"get_weather"}},
      {ReplyFormat::kGemma,
       false,
       "<|channel>thought\nplan\n<channel|>Hello.",
       "Hello.",
       "plan",
       {}},
      {ReplyFormat::kMistral,
       false,
       "[THINK]plan[/THINK]Hi [TOOL_CALLS]f[ARGS]{\"a\": 1}",
       "Hi",
       "plan",
       {"f"}},
      {ReplyFormat::kLlama3,
       false,
       "{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {}}",
       "",
       "",
       {"a", "b"}},
      {ReplyFormat::kLlama3, false, "{\"answer\": 42}", "{\"answer\": 42}", "", {}},
      {ReplyFormat::kLlama3, false, "<|python_tag|>print(1)", "", "", {"python"}},
      {ReplyFormat::kFunctionaryV32, false, "all\nHello there.", "Hello there.", "", {}},
      {ReplyFormat::kFunctionaryV32,
       false,
       "all\nChecking.\n>>>get_weather\n{\"city\": \"Bern\"}",
       "Checking.",
       "",
       {"get_weather"}},
      {ReplyFormat::kCommandR,
       false,
       "<|START_THINKING|>plan<|END_THINKING|><|START_RESPONSE|>Hi.<|END_RESPONSE|>",
       "Hi.",
       "plan",
       {}},
      {ReplyFormat::kKimiK2, false, "<think>plan</think>Hi.", "Hi.", "plan", {}},
      {ReplyFormat::kJson,
       false,
       "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {\"q\": \"x\"}}]}",
       "",
       "",
       {"f"}},
      {ReplyFormat::kJson, false, "{\"name\": \"f\", \"arguments\": {}}", "", "", {"f"}},
  };
  for (const TextCase& c : cases) {
    SCOPED_TRACE(std::string(reply_format_name(c.format)) + ": " + c.text);
    const ParsedReply p = parse_reply(c.format, c.text, c.thinking_open);
    EXPECT_EQ(p.content, c.content);
    EXPECT_EQ(p.reasoning, c.reasoning);
    std::vector<std::string> names;
    for (const auto& t : p.tool_calls) {
      names.push_back(t.name);
      EXPECT_TRUE(ordered_json::accept(t.arguments)) << t.arguments;
    }
    EXPECT_EQ(names, c.calls);
    expect_same(stream_bytes(c.format, c.text, c.thinking_open), p);
  }
}

TEST(ReplyParse, MalformedCallsStayContent) {
  const std::vector<std::pair<ReplyFormat, std::string>> cases = {
      {ReplyFormat::kQwen, "<tool_call>\n{not json}\n</tool_call>"},
      {ReplyFormat::kQwen, "<tool_call>\n{\"arguments\": {}}\n</tool_call>"},
      {ReplyFormat::kQwen3Coder, "<tool_call>\n<function=f>\n<parameter=x>1\n</function>"},
      {ReplyFormat::kGemma, "<|tool_call>call:f{x:<|\"|>open}<tool_call|>"},
      {ReplyFormat::kDeepSeekV31, "<｜tool▁calls▁begin｜>garbage<｜tool▁calls▁end｜>"},
      {ReplyFormat::kMistral, "[TOOL_CALLS]f[ARGS]{broken"},
      {ReplyFormat::kKimiK2, "<|tool_calls_section_begin|>x<|tool_calls_section_end|>"},
      {ReplyFormat::kGlm, "<tool_call>two words\n<arg_key>k</arg_key></tool_call>"},
  };
  for (const auto& [f, text] : cases) {
    SCOPED_TRACE(text);
    const ParsedReply p = parse_reply(f, text);
    EXPECT_TRUE(p.tool_calls.empty());
    EXPECT_EQ(p.content, text);
    expect_same(stream_bytes(f, text, false), p);
  }
}

// Every prefix of every family's reply (a generation cut short) and random bytes: no crash, and
// the stream agrees with the one-shot parse.
TEST(ReplyParse, TruncatedAndRandomInputIsSafe) {
  LOUPE_REQUIRE_TESTDATA();
  std::mt19937 rng(7);
  for (const Family& f : families()) {
    const std::string text = reply_text(f);
    for (size_t n = 0; n <= text.size(); n += 3) {
      const std::string_view cut(text.data(), n);
      for (bool open : {false, true}) {
        SCOPED_TRACE(std::string(reply_format_name(f.format)) + " " + std::string(cut));
        const ParsedReply p = parse_reply(f.format, cut, open);
        for (const auto& t : p.tool_calls) EXPECT_TRUE(ordered_json::accept(t.arguments));
        if (n % 15 == 0) expect_same(stream_bytes(f.format, cut, open), p);
      }
    }
    for (int i = 0; i < 50; ++i) {
      std::string noise = text;
      for (int k = 0; k < 4; ++k) noise[rng() % noise.size()] = static_cast<char>(rng() % 256);
      const ParsedReply p = parse_reply(f.format, noise);
      for (const auto& t : p.tool_calls) EXPECT_TRUE(ordered_json::accept(t.arguments));
    }
  }
}

TEST(ReplyParse, PromptOpensThinking) {
  EXPECT_TRUE(prompt_opens_thinking(ReplyFormat::kQwen3Coder, "<|im_start|>assistant\n<think>\n"));
  EXPECT_FALSE(
      prompt_opens_thinking(ReplyFormat::kQwen, "<|im_start|>assistant\n<think>\n\n</think>\n\n"));
  EXPECT_TRUE(prompt_opens_thinking(ReplyFormat::kDeepSeekV31, "<｜Assistant｜><think>"));
  EXPECT_FALSE(prompt_opens_thinking(ReplyFormat::kDeepSeekV31, "<｜Assistant｜><think></think>"));
  EXPECT_FALSE(
      prompt_opens_thinking(ReplyFormat::kGemma, "<|turn>model\n<|channel>thought\n<channel|>"));
  EXPECT_FALSE(prompt_opens_thinking(ReplyFormat::kPlain, "<think>\n"));
}

// Text that could still become a marker is held back, then released when it does not.
TEST(ReplyStream, HoldsBackPossibleMarkers) {
  ReplyStream s(ReplyFormat::kQwen, false);
  EXPECT_EQ(s.push("Hello <tool").content, "Hello");
  EXPECT_EQ(s.push("bar> x").content, " <toolbar> x");
  EXPECT_EQ(s.push("<tool_call>\n{\"name\": \"f\", ").content, "");
  EXPECT_EQ(s.push("\"arguments\": {}}\n</tool_call>").content, "");
  ReplyStream::Delta rest;
  const ParsedReply p = s.finish(&rest);
  EXPECT_EQ(p.content, "Hello <toolbar> x");
  ASSERT_EQ(p.tool_calls.size(), 1u);
  EXPECT_EQ(p.tool_calls[0].arguments, "{}");
}

}  // namespace
}  // namespace loupe::engine
