// A model's reply split into what the user reads (content), its thinking (reasoning) and the
// tool calls it made, in the syntax of its chat template's family. Pure functions: no I/O, no
// model; the text parsed is the generated text *including* the text of special tokens
// (Tokenizer::token_to_piece(id, /*special=*/true)), since several families mark reasoning and
// tool calls with control tokens.
//
// Each family's syntax is what its template renders for an assistant message with tool calls
// and reasoning (testdata/templates*/cases.json) and what llama.cpp's common/chat.cpp documents
// for the model's output. Text that looks like a tool call but does not parse stays content;
// parsing never throws.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace loupe::engine {

struct ToolCall {
  std::string id;  // from the reply where the family has ids, else "call_" + 24 alnum
  std::string name;
  std::string arguments;  // JSON text (an object re-serialized compactly)
};

struct ParsedReply {
  std::string content;
  std::string reasoning;
  std::vector<ToolCall> tool_calls;
};

enum class ReplyFormat {
  kPlain,        // everything is content
  kQwen,         // <think>..</think>, <tool_call>{"name","arguments"}</tool_call> (Hermes 2/3,
                 // Qwen2.5, Qwen3)
  kQwen3Coder,   // Qwen3.5: <tool_call><function=f><parameter=k>v</parameter></function>
  kGranite,      // Granite 4.0: Hermes <tool_call> blocks
  kSmolLM3,      // <think>..</think>, Hermes <tool_call> blocks
  kGlm,          // GLM 4.5/4.6: <think>, <tool_call>f<arg_key>k</arg_key><arg_value>v</arg_value>
  kGptOss,       // harmony: <|channel|>analysis|commentary|final<|message|>..., to=functions.f
  kDeepSeekR1,   // <think>, <｜tool▁call▁begin｜>function<｜tool▁sep｜>f ```json {..} ```
  kDeepSeekV31,  // </think> (prompt opens it), <｜tool▁call▁begin｜>f<｜tool▁sep｜>{..}
  kMistral,      // [THINK]..[/THINK], [TOOL_CALLS][{..}] or [TOOL_CALLS]f[CALL_ID]id[ARGS]{..}
  kLlama3,       // a bare {"name","parameters"} reply, <|python_tag|>
  kFunctionaryV31,  // <function=f>{..}</function>, <|python_tag|>
  kFunctionaryV32,  // >>>f\n{..} and >>>all\ntext (the prompt ends with ">>>")
  kFireFunctionV2,  // " functools[{..}]"
  kCommandR,        // <|START_THINKING|>, <|START_ACTION|>[..]<|END_ACTION|>, Action: ```json
  kGemma,           // Gemma 4: <|channel>thought..<channel|>, <|tool_call>call:f{k:v}<tool_call|>
  kKimiK2,          // <think>, <|tool_calls_section_begin|><|tool_call_begin|>functions.f:0...
  kJson,            // Loupe's grammar-forced fallback: {"tool_calls":[{"name","arguments"}]}
  kCount
};

// The family whose syntax a chat template teaches, from markers in its source.
ReplyFormat detect_reply_format(std::string_view template_source);
// "plain", "qwen", "gpt-oss", ...
const char* reply_format_name(ReplyFormat format);

// Whether a rendered prompt ends inside the family's reasoning block (Qwen3.5 and DeepSeek R1
// templates add "<think>\n" to the generation prompt, DeepSeek V3.1 "<think>"), so the reply
// starts in reasoning.
bool prompt_opens_thinking(ReplyFormat format, std::string_view prompt);

// The marker that ends the family's reasoning block ("</think>"), or "" when it has none that
// a prompt can leave open.
std::string_view thinking_close_marker(ReplyFormat format);

// `text`: the whole generated text, special tokens' text included. `thinking_open`: the reply
// starts inside a reasoning block (see prompt_opens_thinking).
ParsedReply parse_reply(ReplyFormat format, std::string_view text, bool thinking_open = false);

// parse_reply, incrementally. push() returns the content and reasoning that are decided: text
// that may still turn out to be a marker, a tool call or whitespace that the final parse trims
// is held back. Tool calls are only reported by finish(). The deltas of push() plus `rest`
// concatenate to finish()'s content and reasoning.
class ReplyStream {
 public:
  ReplyStream(ReplyFormat format, bool thinking_open);

  struct Delta {
    std::string content, reasoning;
    bool empty() const { return content.empty() && reasoning.empty(); }
  };
  Delta push(std::string_view text);
  // The final parse; `rest` (when given) receives what push() had not released yet.
  ParsedReply finish(Delta* rest = nullptr);

  const std::string& text() const { return text_; }

 private:
  ReplyFormat format_;
  bool thinking_open_;
  std::string text_;
  std::string sent_content_, sent_reasoning_;
};

}  // namespace loupe::engine
