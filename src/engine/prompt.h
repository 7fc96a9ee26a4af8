// Conversations rendered into prompts the way Hugging Face's apply_chat_template does, with the
// model's own template or, where a caller explicitly allows it, a ChatML fallback.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "engine/chat_output.h"
#include "engine/model.h"

namespace loupe::engine {

// One message as OpenAI's chat API carries it. Members past `content` default to empty so
// {role, content} initializers keep working.
struct Message {
  std::string role;  // system | user | assistant | tool
  std::string content;
  std::vector<ToolCall> tool_calls = {};  // assistant: the calls it made
  std::string tool_call_id = {};          // tool: the call this answers
  std::string name = {};                  // tool: the function's name, when the client gives it
  std::string reasoning_content = {};     // assistant: its thinking
};

// What a rendering adds to the messages.
struct ChatOptions {
  // OpenAI tool objects ([{type:"function", function:{name, description, parameters}}]), passed
  // as the template variable `tools`; null: no tools.
  nlohmann::ordered_json tools = nullptr;
  // Further template variables (chat_template_kwargs): enable_thinking, reasoning_effort, ...
  nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();
};

// The template a conversation is rendered with.
struct ChatFormat {
  std::string source;     // Jinja text
  bool fallback = false;  // ChatML chosen because the model has no template
};

// ChatML (<|im_start|>role\ncontent<|im_end|>\n), the format of most chat models without
// their own template.
const std::string& chatml_template();

// The model's template; without one, ChatML when `allow_fallback`, else nullopt.
std::optional<ChatFormat> chat_format(const Model& model, bool allow_fallback);

// The messages as Hugging Face's apply_chat_template passes them: {role, content} plus
// assistant tool_calls [{type:"function", id, function:{name, arguments}}] (arguments an object
// when they parse as one, else the string), reasoning_content, and tool tool_call_id / name.
// `thinking_copy`: also give the reasoning as `thinking` (gpt-oss's template reads that field,
// as llama.cpp's gpt-oss handler does).
nlohmann::ordered_json messages_json(std::span<const Message> messages, bool thinking_copy);

// Hugging Face's context: messages, tools (options.tools), documents = none,
// add_generation_prompt, continue_final_message = false, bos_token / eos_token when known, then
// options.kwargs. `template_source` decides template-specific copies (see messages_json).
nlohmann::ordered_json chat_context(std::span<const Message> messages, bool add_generation_prompt,
                                    const ChatOptions& options, std::string_view template_source,
                                    const std::optional<std::string>& bos_token,
                                    const std::optional<std::string>& eos_token);
// The same with bos_token / eos_token from the model's vocabulary and its own template.
nlohmann::ordered_json chat_context(const Model& model, std::span<const Message> messages,
                                    bool add_generation_prompt, const ChatOptions& options = {});

// Renders `messages` with `format`; template errors are returned with their line and column.
Expected<std::string> render_chat(const Model& model, const ChatFormat& format,
                                  std::span<const Message> messages, bool add_generation_prompt);
Expected<std::string> render_chat(const Model& model, const ChatFormat& format,
                                  std::span<const Message> messages, bool add_generation_prompt,
                                  const ChatOptions& options);

}  // namespace loupe::engine
