#include "engine/prompt.h"

namespace loupe::engine {

const std::string& chatml_template() {
  static const std::string kChatMl =
      "{% for message in messages %}"
      "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
      "{% endfor %}"
      "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
  return kChatMl;
}

std::optional<ChatFormat> chat_format(const Model& model, bool allow_fallback) {
  if (model.has_chat_template()) return ChatFormat{*model.chat_template_source(), false};
  if (allow_fallback) return ChatFormat{chatml_template(), true};
  return std::nullopt;
}

nlohmann::ordered_json messages_json(std::span<const Message> messages, bool thinking_copy) {
  using Json = nlohmann::ordered_json;
  Json list = Json::array();
  for (const Message& m : messages) {
    Json j = {{"role", m.role}};
    if (!m.tool_call_id.empty()) j["tool_call_id"] = m.tool_call_id;
    if (!m.name.empty()) j["name"] = m.name;
    j["content"] = m.content;
    if (!m.reasoning_content.empty()) j["reasoning_content"] = m.reasoning_content;
    if (!m.tool_calls.empty()) {
      Json calls = Json::array();
      for (const ToolCall& c : m.tool_calls) {
        // Templates index arguments as a mapping (arguments|items, arguments.city); HF passes
        // what the client sent, and clients send OpenAI's JSON string.
        Json args = Json::parse(c.arguments, nullptr, /*allow_exceptions=*/false);
        if (args.is_discarded() || !args.is_object()) args = c.arguments;
        calls.push_back({{"type", "function"},
                         {"id", c.id},
                         {"function", {{"name", c.name}, {"arguments", std::move(args)}}}});
      }
      j["tool_calls"] = std::move(calls);
    }
    if (thinking_copy && !m.reasoning_content.empty()) j["thinking"] = m.reasoning_content;
    list.push_back(std::move(j));
  }
  return list;
}

nlohmann::ordered_json chat_context(std::span<const Message> messages, bool add_generation_prompt,
                                    const ChatOptions& options, std::string_view template_source,
                                    const std::optional<std::string>& bos_token,
                                    const std::optional<std::string>& eos_token) {
  const bool thinking_copy = detect_reply_format(template_source) == ReplyFormat::kGptOss;
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  context["messages"] = messages_json(messages, thinking_copy);
  context["tools"] = options.tools;
  context["documents"] = nullptr;
  context["add_generation_prompt"] = add_generation_prompt;
  context["continue_final_message"] = false;
  if (bos_token) context["bos_token"] = *bos_token;
  if (eos_token) context["eos_token"] = *eos_token;
  if (options.kwargs.is_object())
    for (auto it = options.kwargs.begin(); it != options.kwargs.end(); ++it)
      context[it.key()] = it.value();
  return context;
}

nlohmann::ordered_json chat_context(const Model& model, std::span<const Message> messages,
                                    bool add_generation_prompt, const ChatOptions& options) {
  return chat_context(messages, add_generation_prompt, options,
                      model.chat_template_source().value_or(std::string()), model.bos_text(),
                      model.eos_text());
}

Expected<std::string> render_chat(const Model& model, const ChatFormat& format,
                                  std::span<const Message> messages, bool add_generation_prompt) {
  return render_chat(model, format, messages, add_generation_prompt, ChatOptions{});
}

Expected<std::string> render_chat(const Model& model, const ChatFormat& format,
                                  std::span<const Message> messages, bool add_generation_prompt,
                                  const ChatOptions& options) {
  const nlohmann::ordered_json context = chat_context(
      messages, add_generation_prompt, options, format.source, model.bos_text(), model.eos_text());
  // The model's own template was parsed once at load; a fallback is parsed here.
  if (!format.fallback && model.chat_template() != nullptr &&
      format.source == *model.chat_template_source()) {
    const Expected<chat::Template>& parsed = *model.chat_template();
    if (!parsed) return parsed.status().with_context("the model's chat template");
    auto out = parsed->render(context);
    if (!out) return out.status().with_context("the model's chat template");
    return out;
  }
  LOUPE_ASSIGN_OR_RETURN(chat::Template t, chat::Template::parse(format.source));
  return t.render(context);
}

}  // namespace loupe::engine
