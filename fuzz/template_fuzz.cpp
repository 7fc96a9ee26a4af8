// libFuzzer target for the chat template engine: any template text must parse and render to
// a string or a TemplateError, never a crash, a sanitizer report, a hang or unbounded memory.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chat/template.h"

namespace {

// A small fixed context with the shapes chat templates read: messages with tool calls and
// content parts, tools with JSON schemas, special tokens and flags.
const nlohmann::ordered_json& context() {
  static const nlohmann::ordered_json kContext = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": [{"type": "text", "text": "Grüß dich 日本"}, {"type": "image"}]},
      {"role": "assistant", "content": "", "reasoning_content": "think",
       "tool_calls": [{"id": "call_1", "type": "function",
                       "function": {"name": "get_weather", "arguments": {"city": "Zürich", "days": 2}}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "{\"t\": 21.5}"},
      {"role": "user", "content": null}
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                              "days": {"type": "integer"}}, "required": ["city"]}}}],
    "documents": null, "add_generation_prompt": true, "continue_final_message": false,
    "bos_token": "<s>", "eos_token": "</s>", "enable_thinking": true, "n": 3, "f": 1.5
  })");
  return kContext;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view source(reinterpret_cast<const char*>(data), size);
  auto tmpl = loupe::chat::Template::parse(source);
  if (!tmpl) return 0;
  loupe::chat::RenderOptions options;
  options.now = loupe::chat::DateTime{2024, 7, 26, 12, 0, 0};
  // Tight limits keep each input fast and small under the sanitizers.
  options.max_output_bytes = 1 << 20;
  options.max_steps = 200000;
  options.max_call_depth = 50;
  auto out = tmpl->render(context(), options);
  return 0;
}
