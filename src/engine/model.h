// A loaded model as its users see it: weights, tokenizer, chat template and file facts, in one
// object that `loupe run`, `loupe chat`, the demo and (later) the server share. Everything here
// is immutable after load() except two caches filled on first use (sha256, the token-piece
// index a grammar needs), which are guarded so one Model may serve several generators.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "chat/template.h"
#include "model/arch.h"
#include "sample/grammar_matcher.h"
#include "sample/sampler.h"
#include "tokenizer/tokenizer.h"

namespace loupe::engine {

class Model {
 public:
  // Opens the GGUF file, binds the weights and builds the tokenizer. A chat template that
  // does not parse is not an error here: has_chat_template() stays true and rendering
  // reports the template error (so `--raw` still works on such a file).
  static Expected<std::unique_ptr<Model>> load(const std::string& path);

  const model::Model& weights() const { return *weights_; }
  const model::Hparams& hparams() const { return weights_->hp; }
  const tokenizer::Tokenizer& tokenizer() const { return tokenizer_; }
  const std::string& path() const { return path_; }
  // general.name, else the file name without directory and extension.
  const std::string& name() const { return name_; }
  uint64_t file_size() const;

  // tokenizer.chat_template as written in the file.
  bool has_chat_template() const { return template_source_.has_value(); }
  const std::optional<std::string>& chat_template_source() const { return template_source_; }
  // The parsed template, or the parse error.
  const Expected<chat::Template>* chat_template() const { return parsed_template_.get(); }
  // The text of the BOS / EOS tokens (the template variables bos_token / eos_token).
  const std::optional<std::string>& bos_text() const { return bos_text_; }
  const std::optional<std::string>& eos_text() const { return eos_text_; }

  // Recurrent (Gated DeltaNet) layers keep a state that cannot be rewound to a shorter prefix.
  bool has_recurrent_layers() const;

  // Tokenizes a prompt as the model expects it: BOS/EOS as the vocabulary asks, except that
  // a rendered template (`parse_special`) that already begins with the BOS text gets no second
  // one; with `parse_special`, control tokens spelled in `text` become those tokens.
  std::vector<int32_t> tokenize_prompt(std::string_view text, bool parse_special) const;

  // Lower-case hex SHA-256 of the file (all split parts), computed once.
  Expected<std::string> sha256() const;

  // Token pieces and end-of-generation ids for grammars, DRY and ignore_eos; built once.
  std::shared_ptr<const sample::TokenVocab> token_vocab() const;
  // What a sampler chain needs about this model at context size n_ctx.
  sample::ChainSetup chain_setup(int64_t n_ctx,
                                 std::shared_ptr<const sample::Grammar> grammar = nullptr) const;

 private:
  Model(std::unique_ptr<model::Model> weights, tokenizer::Tokenizer tokenizer)
      : weights_(std::move(weights)), tokenizer_(std::move(tokenizer)) {}

  std::unique_ptr<model::Model> weights_;
  tokenizer::Tokenizer tokenizer_;
  std::string path_;
  std::string name_;
  std::optional<std::string> template_source_;
  std::unique_ptr<Expected<chat::Template>> parsed_template_;
  std::optional<std::string> bos_text_, eos_text_;

  mutable std::mutex mutex_;
  mutable std::optional<std::string> sha256_;
  mutable std::shared_ptr<const sample::TokenVocab> token_vocab_;
};

}  // namespace loupe::engine
