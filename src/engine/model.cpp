#include "engine/model.h"

#include <fstream>

#include "base/sha256.h"
#include "model/vocab_load.h"

namespace loupe::engine {

Expected<std::unique_ptr<Model>> Model::load(const std::string& path) {
  LOUPE_ASSIGN_OR_RETURN(std::unique_ptr<model::Model> weights, model::load_model(path));
  LOUPE_ASSIGN_OR_RETURN(tokenizer::Tokenizer tok, model::load_tokenizer(*weights->file));
  std::unique_ptr<Model> m(new Model(std::move(weights), std::move(tok)));
  const gguf::File& file = *m->weights_->file;
  m->path_ = path;
  m->name_ = file.get_string_or("general.name", "");
  if (m->name_.empty()) {
    std::string_view base = path;
    if (size_t slash = base.rfind('/'); slash != std::string_view::npos)
      base.remove_prefix(slash + 1);
    if (size_t dot = base.rfind('.'); dot != std::string_view::npos && dot > 0)
      base = base.substr(0, dot);
    m->name_ = std::string(base);
  }
  if (const gguf::Value* t = file.find("tokenizer.chat_template"); t != nullptr && t->is_string()) {
    m->template_source_ = *t->as_string();
    m->parsed_template_ =
        std::make_unique<Expected<chat::Template>>(chat::Template::parse(*m->template_source_));
  }
  const tokenizer::Tokenizer& tk = m->tokenizer_;
  if (tk.valid(tk.bos())) m->bos_text_ = tk.token_text(tk.bos());
  if (tk.valid(tk.eos())) m->eos_text_ = tk.token_text(tk.eos());
  return m;
}

uint64_t Model::file_size() const {
  return weights_->file->file_size();
}

bool Model::has_recurrent_layers() const {
  for (model::LayerKind kind : weights_->hp.layer_kind)
    if (kind == model::LayerKind::kRecurrent) return true;
  return false;
}

std::vector<int32_t> Model::tokenize_prompt(std::string_view text, bool parse_special) const {
  // A template that writes the BOS text itself must not get a second BOS from the tokenizer.
  const bool has_bos =
      parse_special && bos_text_ && !bos_text_->empty() && text.starts_with(*bos_text_);
  return tokenizer_.tokenize(text, /*add_special=*/!has_bos, parse_special);
}

Expected<std::string> Model::sha256() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (sha256_) return *sha256_;
  const gguf::File& file = *weights_->file;
  if (file.n_splits() == 1) {
    LOUPE_ASSIGN_OR_RETURN(std::string digest, sha256_file(path_));
    sha256_ = digest;
    return digest;
  }
  // A split model is identified by the hash of its parts' bytes in order.
  Sha256 hash;
  std::vector<char> buf(size_t{1} << 20);
  for (const std::string& part : file.part_paths()) {
    std::ifstream in(part, std::ios::binary);
    if (!in) return make_error(ErrorCode::kIo, "{}: cannot open for hashing", part);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      const auto n = static_cast<size_t>(in.gcount());
      hash.update({reinterpret_cast<const uint8_t*>(buf.data()), n});
    }
    if (in.bad()) return make_error(ErrorCode::kIo, "{}: read failed while hashing", part);
  }
  sha256_ = hash.hex_digest();
  return *sha256_;
}

std::shared_ptr<const sample::TokenVocab> Model::token_vocab() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!token_vocab_) {
    std::vector<std::string> pieces(static_cast<size_t>(tokenizer_.n_vocab()));
    for (int32_t id = 0; id < tokenizer_.n_vocab(); ++id)
      pieces[static_cast<size_t>(id)] = tokenizer_.token_to_piece(id, /*special=*/false);
    token_vocab_ = sample::TokenVocab::create(std::move(pieces), tokenizer_.eog_ids());
  }
  return token_vocab_;
}

sample::ChainSetup Model::chain_setup(int64_t n_ctx,
                                      std::shared_ptr<const sample::Grammar> grammar) const {
  sample::ChainSetup setup;
  setup.n_vocab = static_cast<int32_t>(weights_->hp.n_vocab);
  setup.n_ctx = static_cast<int32_t>(n_ctx);
  setup.vocab = token_vocab();
  setup.tokenize = [this](const std::string& text) {
    return tokenizer_.tokenize(text, /*add_special=*/false, /*parse_special=*/false);
  };
  setup.grammar = std::move(grammar);
  return setup;
}

}  // namespace loupe::engine
