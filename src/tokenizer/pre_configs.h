// The pre-tokenizers named by `tokenizer.ggml.pre`: their split regexes (from each model's
// published tokenizer.json, in the forms llama.cpp runs them) and the flags llama.cpp ties to
// the name.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace loupe::tokenizer {

struct PreConfig {
  std::string name;  // canonical name, for messages
  std::vector<std::string> regexes;
  bool ignore_merges = false;        // a word that is a token is taken whole (Llama 3)
  bool force_add_bos = false;        // add_bos defaults to true
  std::optional<bool> clean_spaces;  // overrides BPE's default (true)
  bool escape_whitespaces = false;   // spaces become U+2581 before BPE (Gemma 4)
  bool byte_encode = true;           // GPT-2 byte alphabet; false: raw UTF-8 with <0xXX> bytes
  bool no_bos = false;               // the model has no BOS (GLM-4)
  bool add_sep = false;
  bool gemma4 = false;  // newline runs are looked up whole
};

// The configuration for a BPE `pre` name ("" = llama.cpp's default, with a warning).
Expected<PreConfig> find_pre_config(const std::string& pre);

}  // namespace loupe::tokenizer
