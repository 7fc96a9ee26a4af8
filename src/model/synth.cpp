#include "model/synth.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/log.h"
#include "gguf/writer.h"
#include "tensor/quant.h"

namespace loupe::model {

using gguf::KeyValue;
using gguf::Value;
using gguf::ValueType;

namespace {

// llama.cpp's GGML_QNT_VERSION, written by llama-quantize next to general.file_type.
constexpr uint32_t kQuantizationVersion = 2;
// Elements generated and quantized per work item; rows never straddle items.
constexpr int64_t kChunkElements = int64_t{1} << 16;

// SentencePiece token types (llama.cpp's llama_token_type).
constexpr int32_t kTokenNormal = 1;
constexpr int32_t kTokenUnknown = 2;
constexpr int32_t kTokenControl = 3;
constexpr int32_t kTokenByte = 6;

// splitmix64 (Steele, Lea, Flood 2014): one multiply-xorshift step per 64 random bits.
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t chunk_seed(uint64_t seed, uint64_t tensor_index, uint64_t chunk) {
  uint64_t s = seed;
  uint64_t h = splitmix64(s) ^ (tensor_index * 0xD1B54A32D192ED03ull);
  h = splitmix64(h) ^ (chunk * 0xABC98388FB8FAC03ull);
  return splitmix64(h);
}

// N(0, 1) approximated by the Irwin-Hall sum of four 16-bit uniforms from one draw:
// variance-matched, bounded at ±3.46σ, and cheap enough not to slow the quantizers down.
float normal_from(uint64_t r) {
  const uint64_t sum = (r & 0xFFFF) + ((r >> 16) & 0xFFFF) + ((r >> 32) & 0xFFFF) + (r >> 48);
  constexpr float kScale = 1.7320508f / 65536.0f;  // sqrt(3) / 2^16
  return (static_cast<float>(sum) - 131070.0f) * kScale;
}

float uniform_from(uint64_t r) { return static_cast<float>(r >> 40) * (1.0f / 16777216.0f); }

// Fills n values of tensor `t` starting at element `first` (the start of a chunk).
void fill_values(const TensorSpec& t, uint64_t state, int64_t first, float* out, int64_t n) {
  const TensorInit& init = t.init;
  switch (init.kind) {
    case InitKind::kNormal:
      for (int64_t i = 0; i < n; ++i) out[i] = init.a * normal_from(splitmix64(state));
      return;
    case InitKind::kOnesJitter:
      for (int64_t i = 0; i < n; ++i) out[i] = 1.0f + init.a * normal_from(splitmix64(state));
      return;
    case InitKind::kUniform:
      for (int64_t i = 0; i < n; ++i)
        out[i] = init.a + (init.b - init.a) * uniform_from(splitmix64(state));
      return;
    case InitKind::kValues:
      std::copy_n(t.values.begin() + first, n, out);
      return;
    case InitKind::kCount: break;
  }
  assert(false && "bad InitKind");
}

struct RowLayout {
  int64_t n_cols;
  int64_t n_rows;
  int64_t rows_per_chunk;
  int64_t n_chunks;
};

RowLayout row_layout(const std::vector<int64_t>& ne) {
  RowLayout l{};
  l.n_cols = ne[0];
  l.n_rows = 1;
  for (size_t i = 1; i < ne.size(); ++i) l.n_rows *= ne[i];
  l.rows_per_chunk = std::max<int64_t>(1, kChunkElements / std::max<int64_t>(1, l.n_cols));
  l.n_chunks = (l.n_rows + l.rows_per_chunk - 1) / l.rows_per_chunk;
  return l;
}

// The bytes of one synthetic tensor: per chunk, generate F32 rows and quantize them.
Status produce_synthetic(const TensorSpec& t, size_t tensor_index, DType type, uint64_t seed,
                         ThreadPool& pool, std::span<uint8_t> dst) {
  const RowLayout l = row_layout(t.ne);
  const size_t row_bytes = dtype_row_size(type, l.n_cols);
  assert(dst.size() == row_bytes * static_cast<size_t>(l.n_rows));
  pool.parallel_for(l.n_chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<float> rows(static_cast<size_t>(l.rows_per_chunk * l.n_cols));
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t r0 = c * l.rows_per_chunk;
      const int64_t n_rows = std::min(l.rows_per_chunk, l.n_rows - r0);
      fill_values(t, chunk_seed(seed, tensor_index, static_cast<uint64_t>(c)), r0 * l.n_cols,
                  rows.data(), n_rows * l.n_cols);
      for (int64_t r = 0; r < n_rows; ++r)
        quantize_row_ref(type, rows.data() + r * l.n_cols,
                         dst.data() + static_cast<size_t>(r0 + r) * row_bytes, l.n_cols);
    }
  });
  return {};
}

// Converts a stored tensor to another type row by row.
Status produce_converted(const gguf::TensorInfo& in, DType type, ThreadPool& pool,
                         std::span<uint8_t> dst) {
  if (in.type == type) {
    std::memcpy(dst.data(), in.data, dst.size());
    return {};
  }
  const RowLayout l = row_layout(in.ne);
  const size_t src_row = dtype_row_size(in.type, l.n_cols);
  const size_t dst_row = dtype_row_size(type, l.n_cols);
  pool.parallel_for(l.n_chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<float> row(static_cast<size_t>(l.n_cols));
    const int64_t r_end = std::min(l.n_rows, c1 * l.rows_per_chunk);
    for (int64_t r = c0 * l.rows_per_chunk; r < r_end; ++r) {
      dequantize_row_ref(in.type, in.data + static_cast<size_t>(r) * src_row, row.data(), l.n_cols);
      quantize_row_ref(type, row.data(), dst.data() + static_cast<size_t>(r) * dst_row, l.n_cols);
    }
  });
  return {};
}

Status check_convertible(const std::string& name, DType from, DType to) {
  if (from == to) return {};
  if (!can_dequantize(from))
    return make_error(ErrorCode::kUnsupported, "tensor '{}': cannot read type {} (no dequantizer)",
                      name, dtype_name(from));
  if (!can_quantize(to))
    return make_error(ErrorCode::kUnsupported,
                      "tensor '{}': the plan needs type {}, which this build cannot quantize to",
                      name, dtype_name(to));
  return {};
}

Value string_array(std::vector<std::string> items) {
  std::vector<Value> values;
  values.reserve(items.size());
  for (std::string& s : items) values.push_back(Value::str(std::move(s)));
  return Value::make_array(ValueType::kString, std::move(values));
}

// bijective base-26 "a".."z", "aa".. of k >= 1.
std::string letters(int64_t k) {
  std::string s;
  for (; k > 0; k = (k - 1) / 26) s.insert(s.begin(), static_cast<char>('a' + (k - 1) % 26));
  return s;
}

}  // namespace

VocabSource synthetic_spm_vocab(int64_t n_vocab) {
  assert(n_vocab >= 262);
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<Value> scores(3, Value::f32(0.0f));
  std::vector<Value> types = {Value::i32(kTokenUnknown), Value::i32(kTokenControl),
                              Value::i32(kTokenControl)};
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(fmt::format("<0x{:02X}>", b));
    scores.push_back(Value::f32(0.0f));
    types.push_back(Value::i32(kTokenByte));
  }
  // As in real SentencePiece vocabs, "▁" (U+2581, the word-start marker) and every printable
  // ASCII character, alone and word-initial, are pieces, so plain English text needs no byte
  // fallback. Then filler pieces alternate "▁word" and "word", unique by construction;
  // descending scores give SentencePiece a merge order.
  const std::string kWordStart = "\xE2\x96\x81";
  std::vector<std::string> pieces = {kWordStart};
  for (char c = '!'; c <= '~'; ++c) {
    if (c >= 'a' && c <= 'z') continue;  // lower-case letters come from letters() below
    pieces.push_back(std::string(1, c));
    pieces.push_back(kWordStart + c);
  }
  size_t n_fixed = pieces.size();
  for (int64_t k = 0; static_cast<int64_t>(tokens.size()) < n_vocab; ++k) {
    if (static_cast<size_t>(k) < n_fixed) {
      tokens.push_back(pieces[k]);
    } else {
      int64_t j = k - static_cast<int64_t>(n_fixed);
      tokens.push_back((j % 2 == 0 ? kWordStart : "") + letters(j / 2 + 1));
    }
    scores.push_back(Value::f32(-static_cast<float>(k)));
    types.push_back(Value::i32(kTokenNormal));
  }
  VocabSource v;
  v.n_vocab = n_vocab;
  v.tokenizer = {
      {"tokenizer.ggml.model", Value::str("llama")},
      {"tokenizer.ggml.pre", Value::str("default")},
      {"tokenizer.ggml.tokens", string_array(std::move(tokens))},
      {"tokenizer.ggml.scores", Value::make_array(ValueType::kFloat32, std::move(scores))},
      {"tokenizer.ggml.token_type", Value::make_array(ValueType::kInt32, std::move(types))},
      {"tokenizer.ggml.bos_token_id", Value::u32(1)},
      {"tokenizer.ggml.eos_token_id", Value::u32(2)},
      {"tokenizer.ggml.unknown_token_id", Value::u32(0)},
      {"tokenizer.ggml.add_bos_token", Value::boolean(true)},
      {"tokenizer.ggml.add_eos_token", Value::boolean(false)},
  };
  return v;
}

Expected<VocabSource> vocab_from_gguf(const gguf::File& file) {
  VocabSource v;
  for (const KeyValue& kv : file.metadata())
    if (kv.key.starts_with("tokenizer.")) v.tokenizer.push_back(kv);
  const Value* tokens = file.find("tokenizer.ggml.tokens");
  if (tokens == nullptr || !tokens->is_array() || tokens->array().empty())
    return make_error(ErrorCode::kNotFound,
                      "{}: no tokenizer.ggml.tokens array; --vocab-from needs a model with a vocabulary",
                      file.path());
  v.n_vocab = static_cast<int64_t>(tokens->array().size());
  return v;
}

PlanModel plan_model_of(const ShapeParams& p) {
  PlanModel m;
  m.arch = p.arch;
  m.n_layer = p.n_layer;
  m.n_head = p.n_head;
  m.n_head_kv = p.layer_n_head_kv(0);
  m.n_expert = p.n_expert;
  return m;
}

Expected<PlanModel> plan_model_of(const gguf::File& file) {
  PlanModel m;
  m.arch = file.architecture();
  if (m.arch.empty())
    return make_error(ErrorCode::kNotFound, "{}: no general.architecture key", file.path());
  LOUPE_ASSIGN_OR_RETURN(m.n_layer, file.get_int(m.arch + ".block_count"));
  // Head counts may be per-layer arrays; llama.cpp's rules look at layer 0.
  auto first = [&](const std::string& key, int64_t fallback) -> int64_t {
    const Value* v = file.find(key);
    if (v == nullptr) return fallback;
    if (v->is_array()) return v->array().empty() ? fallback : v->array()[0].as_int().value_or(fallback);
    return v->as_int().value_or(fallback);
  };
  m.n_head = first(m.arch + ".attention.head_count", 0);
  m.n_head_kv = first(m.arch + ".attention.head_count_kv", m.n_head);
  m.n_expert = file.get_int_or(m.arch + ".expert_count", 0);
  return m;
}

Expected<FilePlan> plan_synth(const SynthSpec& spec, FileType file_type) {
  std::vector<PlanTensor> plan_in;
  for (const TensorSpec& t : spec.tensors) plan_in.push_back({t.name, t.ne, DType::kF32});
  LOUPE_ASSIGN_OR_RETURN(std::vector<DType> types,
                         plan_tensor_types(plan_in, plan_model_of(spec.params), file_type));
  FilePlan plan;
  for (size_t i = 0; i < spec.tensors.size(); ++i) {
    const TensorSpec& t = spec.tensors[i];
    const RowLayout l = row_layout(t.ne);
    const uint64_t n_bytes = dtype_row_size(types[i], l.n_cols) * static_cast<uint64_t>(l.n_rows);
    plan.tensors.push_back({t.name, t.ne, types[i], n_bytes});
    plan.n_params += t.n_elements();
    plan.tensor_bytes += n_bytes;
  }
  return plan;
}

Status synthesize(const SynthSpec& spec, FileType file_type, uint64_t seed,
                  const VocabSource* vocab, const std::string& out_path, ThreadPool& pool) {
  VocabSource synthetic;
  if (vocab == nullptr) {
    synthetic = synthetic_spm_vocab(spec.n_vocab);
    vocab = &synthetic;
  }
  if (vocab->n_vocab != spec.n_vocab)
    return make_error(ErrorCode::kInvalidArgument,
                      "the vocabulary has {} tokens but the shape was built for {}; build the "
                      "spec with n_vocab = {}",
                      vocab->n_vocab, spec.n_vocab, vocab->n_vocab);
  LOUPE_ASSIGN_OR_RETURN(FilePlan plan, plan_synth(spec, file_type));

  gguf::Writer writer;
  for (const KeyValue& kv : spec.metadata) writer.set(kv.key, kv.value);
  writer.set("general.quantization_version", Value::u32(kQuantizationVersion));
  writer.set("general.file_type", Value::u32(static_cast<uint32_t>(file_type)));
  for (const KeyValue& kv : vocab->tokenizer) writer.set(kv.key, kv.value);

  for (size_t i = 0; i < spec.tensors.size(); ++i) {
    const TensorSpec& t = spec.tensors[i];
    const DType type = plan.tensors[i].type;
    LOUPE_TRY(check_convertible(t.name, DType::kF32, type));
    LOUPE_TRY(writer.add_tensor(t.name, type, t.ne, [&spec, i, type, seed, &pool](std::span<uint8_t> dst) {
      return produce_synthetic(spec.tensors[i], i, type, seed, pool, dst);
    }));
  }
  LOUPE_LOG_DEBUG("synth: {} ({}), {} tensors, {:.3f} B parameters, {:.2f} GiB of tensor data",
                 spec.params.name, file_type_name(file_type), spec.tensors.size(),
                 static_cast<double>(plan.n_params) * 1e-9,
                 static_cast<double>(plan.tensor_bytes) / (1024.0 * 1024.0 * 1024.0));
  return writer.write(out_path);
}

Status requantize(const gguf::File& in, FileType file_type, const std::string& out_path,
                  ThreadPool& pool) {
  LOUPE_ASSIGN_OR_RETURN(PlanModel model, plan_model_of(in));
  std::vector<PlanTensor> plan_in;
  for (const gguf::TensorInfo& t : in.tensors()) plan_in.push_back({t.name, t.ne, t.type});
  LOUPE_ASSIGN_OR_RETURN(std::vector<DType> types, plan_tensor_types(plan_in, model, file_type));

  gguf::Writer writer(in.alignment());
  for (const KeyValue& kv : in.metadata())
    if (!kv.key.starts_with("split.")) writer.set(kv.key, kv.value);
  writer.set("general.quantization_version", Value::u32(kQuantizationVersion));
  writer.set("general.file_type", Value::u32(static_cast<uint32_t>(file_type)));

  for (size_t i = 0; i < in.tensors().size(); ++i) {
    const gguf::TensorInfo& t = in.tensors()[i];
    const DType type = types[i];
    LOUPE_TRY(check_convertible(t.name, t.type, type).with_context(in.path()));
    LOUPE_TRY(writer.add_tensor(t.name, type, t.ne, [&t, type, &pool](std::span<uint8_t> dst) {
      return produce_converted(t, type, pool, dst);
    }));
  }
  return writer.write(out_path);
}

}  // namespace loupe::model
