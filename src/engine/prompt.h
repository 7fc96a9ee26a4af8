// Conversations rendered into prompts the way Hugging Face's apply_chat_template does, with the
// model's own template or, where a caller explicitly allows it, a ChatML fallback.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "engine/model.h"

namespace loupe::engine {

struct Message {
  std::string role;  // system | user | assistant | tool
  std::string content;
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

// Hugging Face's context: messages, tools = none, documents = none, add_generation_prompt,
// continue_final_message = false, bos_token / eos_token from the vocabulary.
nlohmann::ordered_json chat_context(const Model& model, std::span<const Message> messages,
                                    bool add_generation_prompt);

// Renders `messages` with `format`; template errors are returned with their line and column.
Expected<std::string> render_chat(const Model& model, const ChatFormat& format,
                                  std::span<const Message> messages, bool add_generation_prompt);

}  // namespace loupe::engine
