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

nlohmann::ordered_json chat_context(const Model& model, std::span<const Message> messages,
                                    bool add_generation_prompt) {
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const Message& m : messages) list.push_back({{"role", m.role}, {"content", m.content}});
  context["messages"] = std::move(list);
  context["tools"] = nullptr;
  context["documents"] = nullptr;
  context["add_generation_prompt"] = add_generation_prompt;
  context["continue_final_message"] = false;
  if (model.bos_text()) context["bos_token"] = *model.bos_text();
  if (model.eos_text()) context["eos_token"] = *model.eos_text();
  return context;
}

Expected<std::string> render_chat(const Model& model, const ChatFormat& format,
                                  std::span<const Message> messages, bool add_generation_prompt) {
  const nlohmann::ordered_json context = chat_context(model, messages, add_generation_prompt);
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
