// The one place that joins GGUF metadata to a vocabulary: reads `tokenizer.ggml.*` (and
// `general.architecture`, `general.name`) into tokenizer::VocabData. Works on vocab-only files.
#pragma once

#include "base/status.h"
#include "gguf/file.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace loupe::model {

Expected<tokenizer::VocabData> load_vocab(const gguf::File& file);

// load_vocab + Tokenizer::create, errors prefixed with the file name.
Expected<tokenizer::Tokenizer> load_tokenizer(const gguf::File& file);

}  // namespace loupe::model
