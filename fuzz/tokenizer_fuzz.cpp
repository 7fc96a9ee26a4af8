// libFuzzer target for the tokenizer: any bytes, with and without special-token parsing, must
// tokenize without a crash or sanitizer report; the ids must be valid, detokenize and stream
// decoding must accept them, and the streamed text must be valid UTF-8.
//
// The vocabulary: the GGUF named by LOUPE_FUZZ_VOCAB, else testdata's llama-spm vocab, else a
// small in-memory byte-level BPE vocabulary.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "model/vocab_load.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace {

using loupe::tokenizer::Tokenizer;

Tokenizer in_memory() {
  loupe::tokenizer::VocabData d;
  d.model = "gpt2";
  d.pre = "llama-bpe";
  for (int b = 0; b < 256; ++b) {
    std::string t;
    loupe::tokenizer::append_utf8(loupe::tokenizer::byte_to_codepoint(static_cast<uint8_t>(b)), t);
    d.tokens.push_back(t);
  }
  for (const char* t : {"Ġt", "he", "Ġthe", "in", "<|begin_of_text|>", "<|eot_id|>"})
    d.tokens.push_back(t);
  d.token_types.assign(d.tokens.size(), 1);
  d.token_types[d.tokens.size() - 2] = d.token_types[d.tokens.size() - 1] = 3;
  d.merges = {"Ġ t", "h e", "Ġt he", "i n"};
  d.bos = static_cast<int32_t>(d.tokens.size() - 2);
  return std::move(Tokenizer::create(d)).value();
}

Tokenizer make_tokenizer() {
  const char* env = std::getenv("LOUPE_FUZZ_VOCAB");
  std::string path =
      env != nullptr ? env : std::string(LOUPE_FUZZ_TESTDATA) + "/vocab/ggml-vocab-llama-spm.gguf";
  auto file = loupe::gguf::File::open(path);
  if (file) {
    auto tok = loupe::model::load_tokenizer(*file);
    if (tok) return std::move(tok).value();
  }
  return in_memory();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Tokenizer tok = make_tokenizer();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (bool parse_special : {false, true}) {
    auto ids = tok.tokenize(text, parse_special, parse_special);
    for (int32_t id : ids)
      if (!tok.valid(id)) __builtin_trap();
    std::string out = tok.detokenize(ids, parse_special, !parse_special);
    loupe::tokenizer::StreamDecoder dec(tok, parse_special);
    std::string streamed;
    for (int32_t id : ids) streamed += dec.push(id);
    streamed += dec.flush();
    if (loupe::tokenizer::sanitize_utf8(streamed) != streamed) __builtin_trap();
    (void)out;
  }
  return 0;
}
