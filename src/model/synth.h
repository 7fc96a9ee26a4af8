// `loupe synth` and `loupe quantize`: write a random-weight GGUF of a model shape, or
// re-quantize an existing GGUF, with llama-quantize's per-tensor type mixture.
//
// Random weights come from a PRNG stream seeded by (seed, tensor index, row chunk), and
// every chunk of whole rows is quantized on its own, so a file's bytes depend only on the
// seed, never on the thread count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "gguf/file.h"
#include "gguf/value.h"
#include "model/quant_plan.h"
#include "model/shapes.h"
#include "tensor/dtype.h"

namespace loupe::model {

// The tokenizer written into a synthetic model: every `tokenizer.*` key and the token count
// (which sizes token_embd / output).
struct VocabSource {
  std::vector<gguf::KeyValue> tokenizer;
  int64_t n_vocab = 0;
};

// Copies all tokenizer.* keys of another model (`--vocab-from MODEL`).
Expected<VocabSource> vocab_from_gguf(const gguf::File& file);
// A SentencePiece ("llama") byte-fallback vocabulary of n_vocab >= 262 tokens: <unk>, <s>,
// </s>, the 256 byte tokens <0x00>..<0xFF>, then unique filler pieces with scores.
VocabSource synthetic_spm_vocab(int64_t n_vocab);

// What a synthesized (or re-quantized) file will hold, without writing it.
struct TensorPlanRow {
  std::string name;
  std::vector<int64_t> ne;
  DType type = DType::kF32;
  uint64_t n_bytes = 0;
};
struct FilePlan {
  std::vector<TensorPlanRow> tensors;
  int64_t n_params = 0;
  uint64_t tensor_bytes = 0;  // sum of tensor sizes (alignment padding excluded)
};

PlanModel plan_model_of(const ShapeParams& params);
Expected<PlanModel> plan_model_of(const gguf::File& file);

// Parameter count, per-tensor types and tensor bytes of `spec` at `file_type`
// (`loupe synth --dry-run`).
Expected<FilePlan> plan_synth(const SynthSpec& spec, FileType file_type);

// Writes a random-weight GGUF of `spec`. `vocab` may be null (synthetic SPM vocabulary of
// spec.n_vocab tokens); otherwise vocab->n_vocab must equal spec.n_vocab (build the spec
// with ShapeParams::n_vocab = vocab->n_vocab).
Status synthesize(const SynthSpec& spec, FileType file_type, uint64_t seed,
                  const VocabSource* vocab, const std::string& out_path, ThreadPool& pool);

// Re-quantizes every tensor of `in` per the plan (dequantize, quantize) and copies all
// metadata, updating general.file_type / general.quantization_version.
Status requantize(const gguf::File& in, FileType file_type, const std::string& out_path,
                  ThreadPool& pool);

}  // namespace loupe::model
