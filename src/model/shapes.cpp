#include "model/shapes.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numbers>
#include <sstream>

#include <nlohmann/json.hpp>

namespace loupe::model {

using gguf::KeyValue;
using gguf::Value;
using gguf::ValueType;

int64_t TensorSpec::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

int64_t SynthSpec::n_params() const {
  int64_t n = 0;
  for (const TensorSpec& t : tensors) n += t.n_elements();
  return n;
}

bool ShapeParams::is_recurrent(int64_t il) const {
  const bool hybrid = arch == "qwen35" || arch == "qwen35moe";
  return hybrid && (il + 1) % full_attention_interval != 0;
}

bool ShapeParams::is_moe_layer(int64_t il) const {
  if (n_expert == 0) return false;
  return moe_layers.empty() || std::find(moe_layers.begin(), moe_layers.end(), il) != moe_layers.end();
}

int64_t ShapeParams::layer_n_ff(int64_t il) const {
  return double_wide_mlp && !has_kv(il) ? 2 * n_ff : n_ff;
}

int64_t ShapeParams::layer_head_dim(int64_t il) const {
  return is_swa(il) && head_dim_swa > 0 ? head_dim_swa : head_dim;
}

int64_t ShapeParams::layer_n_head_kv(int64_t il) const {
  return is_swa(il) && n_head_kv_swa > 0 ? n_head_kv_swa : n_head_kv;
}

// ---------------------------------------------------------------------------------------
// Catalog. Numbers are the published Hugging Face config.json values of each model.

namespace {

ShapeParams llama_shape(std::string name, int64_t n_vocab, int64_t n_ctx, int64_t n_embd,
                        int64_t n_layer, int64_t n_ff, int64_t n_head, int64_t n_head_kv,
                        double rms_eps, double rope_base, bool tied) {
  ShapeParams p;
  p.arch = "llama";
  p.name = std::move(name);
  p.n_vocab = n_vocab;
  p.n_ctx = n_ctx;
  p.n_embd = n_embd;
  p.n_layer = n_layer;
  p.n_ff = n_ff;
  p.n_head = n_head;
  p.n_head_kv = n_head_kv;
  p.rms_eps = rms_eps;
  p.rope_base = rope_base;
  p.tied_embeddings = tied;
  return p;
}

std::vector<CatalogEntry> make_catalog() {
  std::vector<CatalogEntry> c;

  // Karpathy's llama2.c stories15M (dim 288, 6 layers, 6 heads, hidden 768, seq 256) with a
  // 32000-token vocab: small enough that `make run` synthesizes it in a second.
  c.push_back({"stories-15m", "karpathy/tinyllamas stories15M (llama2.c config)",
               llama_shape("stories15M", 32000, 256, 288, 6, 768, 6, 6, 1e-5, 10000.0, true)});

  // TinyLlama/TinyLlama-1.1B-Chat-v1.0 config.json.
  c.push_back({"tinyllama-1.1b", "TinyLlama/TinyLlama-1.1B-Chat-v1.0 config.json",
               llama_shape("TinyLlama-1.1B", 32000, 2048, 2048, 22, 5632, 32, 4, 1e-5, 10000.0,
                           false)});

  // meta-llama/Llama-3.2-1B config.json: rope_scaling llama3, factor 32, orig ctx 8192.
  ShapeParams l32 = llama_shape("Llama-3.2-1B", 128256, 131072, 2048, 16, 8192, 32, 8, 1e-5,
                                500000.0, true);
  l32.rope_scaling = "llama3";
  l32.rope_scaling_factor = 32.0;
  l32.rope_orig_ctx = 8192;
  c.push_back({"llama-3.2-1b", "meta-llama/Llama-3.2-1B config.json", l32});

  // meta-llama/Llama-3.1-8B config.json: rope_scaling llama3, factor 8, orig ctx 8192.
  ShapeParams l31 = llama_shape("Llama-3.1-8B", 128256, 131072, 4096, 32, 14336, 32, 8, 1e-5,
                                500000.0, false);
  l31.rope_scaling = "llama3";
  l31.rope_scaling_factor = 8.0;
  l31.rope_orig_ctx = 8192;
  c.push_back({"llama-3.1-8b", "meta-llama/Llama-3.1-8B config.json", l31});

  // Qwen/Qwen3-0.6B and Qwen/Qwen3-8B config.json (head_dim 128 in both).
  ShapeParams q06;
  q06.arch = "qwen3";
  q06.name = "Qwen3-0.6B";
  q06.n_vocab = 151936;
  q06.n_ctx = 40960;
  q06.n_embd = 1024;
  q06.n_layer = 28;
  q06.n_ff = 3072;
  q06.n_head = 16;
  q06.n_head_kv = 8;
  q06.head_dim = 128;
  q06.rope_base = 1000000.0;
  q06.tied_embeddings = true;
  c.push_back({"qwen3-0.6b", "Qwen/Qwen3-0.6B config.json", q06});

  ShapeParams q8 = q06;
  q8.name = "Qwen3-8B";
  q8.n_embd = 4096;
  q8.n_layer = 36;
  q8.n_ff = 12288;
  q8.n_head = 32;
  q8.tied_embeddings = false;
  c.push_back({"qwen3-8b", "Qwen/Qwen3-8B config.json", q8});

  // Qwen/Qwen3.6-27B text_config (same topology as Qwen3.5-27B): 64 layers, every 4th
  // full attention (24 heads x 256, 4 KV heads, output gate), the rest Gated DeltaNet
  // (16 key heads, 48 value heads, head dim 128, conv 4); partial rotary 0.25 of 256 =
  // 64 rope dims, mrope_section [11, 11, 10]; rope_theta 1e7; untied.
  ShapeParams q27;
  q27.arch = "qwen35";
  q27.name = "Qwen3.6-27B";
  q27.n_vocab = 248320;
  q27.n_ctx = 262144;
  q27.n_embd = 5120;
  q27.n_layer = 64;
  q27.n_ff = 17408;
  q27.n_head = 24;
  q27.n_head_kv = 4;
  q27.head_dim = 256;
  q27.n_rot = 64;
  q27.rope_base = 10000000.0;
  q27.full_attention_interval = 4;
  q27.ssm_conv_kernel = 4;
  q27.ssm_head_dim = 128;
  q27.ssm_n_k_heads = 16;
  q27.ssm_n_v_heads = 48;
  q27.rope_sections = {11, 11, 10, 0};
  c.push_back({"qwen3.6-27b", "Qwen/Qwen3.6-27B (= Qwen3.5-27B topology) text_config", q27});

  // Qwen3.6-35B-A3B: same language/MoE topology as the published Qwen3.5-35B-A3B config
  // (40 layers, hidden 2048, 16 heads x 256, 2 KV heads; DeltaNet 16 key / 32 value heads
  // of 128; 256 experts, 8 used, expert ffn 512, shared expert 512). The Qwen3.6 config
  // itself was not available here, so these are the Qwen3.5-35B-A3B numbers.
  ShapeParams q35 = q27;
  q35.arch = "qwen35moe";
  q35.name = "Qwen3.6-35B-A3B";
  q35.n_embd = 2048;
  q35.n_layer = 40;
  q35.n_ff = 512;  // written as feed_forward_length; unused by llama.cpp for this arch
  q35.n_head = 16;
  q35.n_head_kv = 2;
  q35.ssm_n_v_heads = 32;
  q35.n_expert = 256;
  q35.n_expert_used = 8;
  q35.n_ff_exp = 512;
  q35.n_ff_shexp = 512;
  c.push_back({"qwen3.6-35b-a3b", "Qwen3.5-35B-A3B config (Qwen3.6 uses the same topology)",
               q35});

  // google/gemma-4-31B text_config: 60 layers, 5 sliding (window 1024, head dim 256,
  // 16 KV heads, rope 1e4) per 1 global (head dim 512, 4 KV heads, K = V, proportional
  // rope 1e6 on 0.25 of the dims); hidden 5376, ffn 21504, 32 heads, tied, softcap 30.
  ShapeParams g31;
  g31.arch = "gemma4";
  g31.name = "Gemma-4-31B";
  g31.n_vocab = 262144;
  g31.n_ctx = 262144;
  g31.n_embd = 5376;
  g31.n_layer = 60;
  g31.n_ff = 21504;
  g31.n_head = 32;
  g31.n_head_kv = 4;
  g31.head_dim = 512;
  g31.n_rot = 512;
  g31.rope_base = 1000000.0;
  g31.tied_embeddings = true;
  g31.n_swa = 1024;
  g31.swa_period = 6;
  g31.head_dim_swa = 256;
  g31.n_head_kv_swa = 16;
  g31.n_rot_swa = 256;
  g31.rope_base_swa = 10000.0;
  g31.rope_partial_factor = 0.25;
  g31.k_eq_v = true;
  g31.final_logit_softcap = 30.0;
  c.push_back({"gemma-4-31b", "google/gemma-4-31B config.json (text_config)", g31});

  // openai/gpt-oss-20b config.json: 24 layers alternating sliding (128) / full attention,
  // 64 heads x 64, 8 KV heads, 32 experts (4 used) of 2880, YaRN factor 32 from 4096.
  ShapeParams oss;
  oss.arch = "gpt-oss";
  oss.name = "gpt-oss-20b";
  oss.n_vocab = 201088;
  oss.n_ctx = 131072;
  oss.n_embd = 2880;
  oss.n_layer = 24;
  oss.n_ff = 2880;
  oss.n_head = 64;
  oss.n_head_kv = 8;
  oss.head_dim = 64;
  oss.rms_eps = 1e-5;
  oss.rope_base = 150000.0;
  oss.rope_scaling = "yarn";
  oss.rope_scaling_factor = 32.0;
  oss.rope_orig_ctx = 4096;
  oss.n_expert = 32;
  oss.n_expert_used = 4;
  oss.n_ff_exp = 2880;
  oss.n_swa = 128;
  oss.swa_period = 2;
  c.push_back({"gpt-oss-20b", "openai/gpt-oss-20b config.json", oss});

  return c;
}

// Fills the fields derived from others ("0 = default" in the header).
ShapeParams with_defaults(ShapeParams p) {
  if (p.n_head_kv == 0) p.n_head_kv = p.n_head;
  if (p.head_dim == 0 && p.n_head > 0) p.head_dim = p.n_embd / p.n_head;
  if (p.n_rot == 0) p.n_rot = p.head_dim;
  if (p.arch == "gemma4") {
    if (p.head_dim_swa == 0) p.head_dim_swa = p.head_dim;
    if (p.n_head_kv_swa == 0) p.n_head_kv_swa = p.n_head_kv;
    if (p.n_rot_swa == 0) p.n_rot_swa = p.head_dim_swa;
    if (p.rope_base_swa == 0.0) p.rope_base_swa = 10000.0;
    if (p.swa_period == 0) p.swa_period = 6;  // Gemma 3/4: five local layers per global one
  }
  if (p.arch == "gpt-oss" && p.swa_period == 0) p.swa_period = 2;  // llama.cpp's default
  if (p.n_ff_exp == 0 && p.n_expert > 0) p.n_ff_exp = p.n_ff;
  if (p.n_ff == 0 && (p.arch == "gpt-oss" || p.arch == "qwen35moe")) p.n_ff = p.n_ff_exp;
  if (p.n_ff_shexp == 0 && p.arch == "qwen35moe") p.n_ff_shexp = p.n_ff_exp;
  return p;
}

}  // namespace

const std::vector<CatalogEntry>& shape_catalog() {
  static const std::vector<CatalogEntry> catalog = make_catalog();
  return catalog;
}

Expected<ShapeParams> find_shape(std::string_view name) {
  std::string known;
  for (const CatalogEntry& e : shape_catalog()) {
    if (e.name == name) return with_defaults(e.params);
    known += known.empty() ? "" : ", ";
    known += e.name;
  }
  return make_error(ErrorCode::kNotFound,
                    "unknown shape '{}'; known shapes: {} (or use --config FILE.json)", name,
                    known);
}

// ---------------------------------------------------------------------------------------
// JSON config.

namespace {

using Json = nlohmann::json;

Status read_field(const Json& j, const std::string& key, int64_t& out) {
  if (!j.is_number_integer()) return make_error(ErrorCode::kInvalidArgument, "'{}' must be an integer", key);
  out = j.get<int64_t>();
  if (out < 0) return make_error(ErrorCode::kInvalidArgument, "'{}' must not be negative", key);
  return {};
}
Status read_field(const Json& j, const std::string& key, double& out) {
  if (!j.is_number()) return make_error(ErrorCode::kInvalidArgument, "'{}' must be a number", key);
  out = j.get<double>();
  return {};
}
Status read_field(const Json& j, const std::string& key, bool& out) {
  if (!j.is_boolean()) return make_error(ErrorCode::kInvalidArgument, "'{}' must be true or false", key);
  out = j.get<bool>();
  return {};
}
Status read_field(const Json& j, const std::string& key, std::string& out) {
  if (!j.is_string()) return make_error(ErrorCode::kInvalidArgument, "'{}' must be a string", key);
  out = j.get<std::string>();
  return {};
}
Status read_field(const Json& j, const std::string& key, std::vector<int64_t>& out) {
  if (!j.is_array()) return make_error(ErrorCode::kInvalidArgument, "'{}' must be an array of integers", key);
  out.clear();
  for (const Json& item : j) {
    if (!item.is_number_integer() || item.get<int64_t>() < 0)
      return make_error(ErrorCode::kInvalidArgument, "'{}' must be an array of non-negative integers", key);
    out.push_back(item.get<int64_t>());
  }
  return {};
}

}  // namespace

Expected<ShapeParams> shape_from_json(std::string_view json_text, const std::string& origin) {
  Json j = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return make_error(ErrorCode::kInvalidArgument, "{}: not a JSON object", origin);

  ShapeParams p;
  // One row per accepted field: the single place that maps names to members.
  auto visit = [&](const std::string& key, const Json& v) -> Status {
#define LOUPE_FIELD(name) \
  if (key == #name) return read_field(v, key, p.name);
    LOUPE_FIELD(arch) LOUPE_FIELD(name) LOUPE_FIELD(n_vocab) LOUPE_FIELD(n_ctx)
    LOUPE_FIELD(n_embd) LOUPE_FIELD(n_layer) LOUPE_FIELD(n_ff) LOUPE_FIELD(n_head)
    LOUPE_FIELD(n_head_kv) LOUPE_FIELD(head_dim) LOUPE_FIELD(n_rot) LOUPE_FIELD(rms_eps)
    LOUPE_FIELD(rope_base) LOUPE_FIELD(tied_embeddings) LOUPE_FIELD(rope_scaling)
    LOUPE_FIELD(rope_scaling_factor) LOUPE_FIELD(rope_orig_ctx)
    LOUPE_FIELD(rope_low_freq_factor) LOUPE_FIELD(rope_high_freq_factor)
    LOUPE_FIELD(n_expert) LOUPE_FIELD(n_expert_used) LOUPE_FIELD(n_ff_exp)
    LOUPE_FIELD(n_ff_shexp) LOUPE_FIELD(moe_layers) LOUPE_FIELD(full_attention_interval)
    LOUPE_FIELD(ssm_conv_kernel) LOUPE_FIELD(ssm_head_dim) LOUPE_FIELD(ssm_n_k_heads)
    LOUPE_FIELD(ssm_n_v_heads) LOUPE_FIELD(rope_sections) LOUPE_FIELD(n_swa)
    LOUPE_FIELD(swa_period) LOUPE_FIELD(head_dim_swa) LOUPE_FIELD(n_head_kv_swa)
    LOUPE_FIELD(n_rot_swa) LOUPE_FIELD(rope_base_swa) LOUPE_FIELD(rope_partial_factor)
    LOUPE_FIELD(k_eq_v) LOUPE_FIELD(n_kv_shared) LOUPE_FIELD(n_embd_per_layer)
    LOUPE_FIELD(double_wide_mlp) LOUPE_FIELD(final_logit_softcap)
#undef LOUPE_FIELD
    return make_error(ErrorCode::kInvalidArgument,
                      "unknown field '{}' (accepted fields are listed in src/model/shapes.h)", key);
  };
  for (const auto& [key, value] : j.items()) {
    Status s = visit(key, value);
    if (!s.ok()) return s.with_context(origin);
  }
  if (p.name.empty()) p.name = "synthetic-" + p.arch;
  p = with_defaults(std::move(p));
  LOUPE_TRY(validate(p).with_context(origin));
  return p;
}

Expected<ShapeParams> shape_from_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "{}: cannot open the config file", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return shape_from_json(ss.str(), path);
}

// ---------------------------------------------------------------------------------------
// Validation.

Status validate(const ShapeParams& p) {
  static const char* const kArchs[] = {"llama", "qwen3", "qwen35", "qwen35moe", "gemma4",
                                       "gpt-oss"};
  if (std::find(std::begin(kArchs), std::end(kArchs), p.arch) == std::end(kArchs))
    return make_error(ErrorCode::kInvalidArgument,
                      "arch '{}' is not supported (llama, qwen3, qwen35, qwen35moe, gemma4, gpt-oss)",
                      p.arch);
  auto need = [](int64_t v, const char* field) -> Status {
    if (v <= 0) return make_error(ErrorCode::kInvalidArgument, "'{}' must be set (> 0)", field);
    return {};
  };
  LOUPE_TRY(need(p.n_vocab, "n_vocab"));
  LOUPE_TRY(need(p.n_ctx, "n_ctx"));
  LOUPE_TRY(need(p.n_embd, "n_embd"));
  LOUPE_TRY(need(p.n_layer, "n_layer"));
  LOUPE_TRY(need(p.n_head, "n_head"));
  LOUPE_TRY(need(p.n_head_kv, "n_head_kv"));
  LOUPE_TRY(need(p.head_dim, "head_dim"));
  if (p.n_vocab < 259 + 3)
    return make_error(ErrorCode::kInvalidArgument, "'n_vocab' must be at least 262 (3 special + 256 byte tokens + 3)");
  if (p.n_head % p.n_head_kv != 0)
    return make_error(ErrorCode::kInvalidArgument, "'n_head' ({}) must be a multiple of 'n_head_kv' ({})", p.n_head, p.n_head_kv);
  if (p.n_rot > p.head_dim || p.n_rot % 2 != 0)
    return make_error(ErrorCode::kInvalidArgument, "'n_rot' ({}) must be even and at most head_dim ({})", p.n_rot, p.head_dim);
  if (p.arch == "llama" && p.n_rot != p.head_dim)
    return make_error(ErrorCode::kInvalidArgument, "llama requires n_rot == head_dim (llama.cpp checks it)");
  if (p.rope_scaling != "none" && p.rope_scaling != "llama3" && p.rope_scaling != "yarn")
    return make_error(ErrorCode::kInvalidArgument, "'rope_scaling' must be none, llama3 or yarn, not '{}'", p.rope_scaling);
  if (p.rope_scaling != "none") {
    LOUPE_TRY(need(p.rope_orig_ctx, "rope_orig_ctx"));
    if (p.rope_scaling_factor <= 0)
      return make_error(ErrorCode::kInvalidArgument, "'rope_scaling_factor' must be > 0");
  }
  if (p.rope_scaling == "llama3" && p.rope_high_freq_factor <= p.rope_low_freq_factor)
    return make_error(ErrorCode::kInvalidArgument, "'rope_high_freq_factor' must exceed 'rope_low_freq_factor'");

  const bool moe_arch = p.arch == "qwen35moe" || p.arch == "gpt-oss";
  if (moe_arch || p.n_expert > 0) {
    LOUPE_TRY(need(p.n_expert, "n_expert"));
    LOUPE_TRY(need(p.n_expert_used, "n_expert_used"));
    LOUPE_TRY(need(p.n_ff_exp, "n_ff_exp"));
    if (p.n_expert_used > p.n_expert)
      return make_error(ErrorCode::kInvalidArgument, "'n_expert_used' exceeds 'n_expert'");
    if (p.n_expert > 512) return make_error(ErrorCode::kInvalidArgument, "'n_expert' exceeds llama.cpp's limit of 512");
  }
  if (p.n_expert > 0 && p.arch != "gemma4" && !moe_arch)
    return make_error(ErrorCode::kInvalidArgument, "arch '{}' has no MoE variant here (use qwen35moe, gemma4 or gpt-oss)", p.arch);
  if (!moe_arch) LOUPE_TRY(need(p.n_ff, "n_ff"));

  if (p.arch == "qwen35" || p.arch == "qwen35moe") {
    LOUPE_TRY(need(p.full_attention_interval, "full_attention_interval"));
    LOUPE_TRY(need(p.ssm_conv_kernel, "ssm_conv_kernel"));
    LOUPE_TRY(need(p.ssm_head_dim, "ssm_head_dim"));
    LOUPE_TRY(need(p.ssm_n_k_heads, "ssm_n_k_heads"));
    LOUPE_TRY(need(p.ssm_n_v_heads, "ssm_n_v_heads"));
    if (p.rope_sections.size() != 4)
      return make_error(ErrorCode::kInvalidArgument, "'rope_sections' must have 4 entries (M-RoPE sections, e.g. [11, 11, 10, 0])");
    if (p.ssm_n_v_heads % p.ssm_n_k_heads != 0)
      return make_error(ErrorCode::kInvalidArgument, "'ssm_n_v_heads' must be a multiple of 'ssm_n_k_heads'");
  }
  if (p.arch == "gemma4" || p.arch == "gpt-oss") LOUPE_TRY(need(p.n_swa, "n_swa"));
  if (p.n_kv_shared >= p.n_layer && p.n_kv_shared > 0)
    return make_error(ErrorCode::kInvalidArgument, "'n_kv_shared' must be below 'n_layer'");
  for (int64_t il : p.moe_layers)
    if (il >= p.n_layer) return make_error(ErrorCode::kInvalidArgument, "'moe_layers' entry {} is not a layer", il);
  if (p.rope_partial_factor <= 0 || p.rope_partial_factor > 1)
    return make_error(ErrorCode::kInvalidArgument, "'rope_partial_factor' must be in (0, 1]");
  return {};
}

// ---------------------------------------------------------------------------------------
// Expansion into metadata and tensors, one function per family.

namespace {

constexpr float kWeightStd = 0.02f;  // matrices; a typical initializer_range
constexpr float kNormStd = 0.02f;

class SpecBuilder {
 public:
  explicit SpecBuilder(SynthSpec& spec) : spec_(spec), prefix_(spec.arch + ".") {}

  void u32(const std::string& key, int64_t v) { add(key, Value::u32(static_cast<uint32_t>(v))); }
  void f32(const std::string& key, double v) { add(key, Value::f32(static_cast<float>(v))); }
  void str(const std::string& key, std::string v) { add(key, Value::str(std::move(v))); }
  void i32_array(const std::string& key, const std::vector<int64_t>& v) {
    std::vector<Value> items;
    for (int64_t x : v) items.push_back(Value::i32(static_cast<int32_t>(x)));
    add(key, Value::make_array(ValueType::kInt32, std::move(items)));
  }
  void bool_array(const std::string& key, const std::vector<bool>& v) {
    std::vector<Value> items;
    for (bool x : v) items.push_back(Value::boolean(x));
    add(key, Value::make_array(ValueType::kBool, std::move(items)));
  }

  void matrix(const std::string& name, std::vector<int64_t> ne) {
    tensor(name, std::move(ne), {InitKind::kNormal, kWeightStd, 0});
  }
  void norm(const std::string& name, int64_t n) {
    tensor(name, {n}, {InitKind::kOnesJitter, kNormStd, 0});
  }
  void tensor(const std::string& name, std::vector<int64_t> ne, TensorInit init,
              std::vector<float> values = {}) {
    spec_.tensors.push_back({name, std::move(ne), init, std::move(values)});
  }
  static std::string blk(int64_t il, const char* suffix) {
    return "blk." + std::to_string(il) + "." + suffix;
  }

 private:
  void add(const std::string& key, Value v) { spec_.metadata.push_back({prefix_ + key, std::move(v)}); }
  SynthSpec& spec_;
  std::string prefix_;
};

// Keys shared by every family (llama.cpp's llama_model_base::load_hparams).
void common_keys(SpecBuilder& b, const ShapeParams& p) {
  b.u32("context_length", p.n_ctx);
  b.u32("embedding_length", p.n_embd);
  b.u32("block_count", p.n_layer);
}

// Embeddings and the final norm; `output.weight` unless tied.
void io_tensors(SpecBuilder& b, const ShapeParams& p) {
  b.matrix("token_embd.weight", {p.n_embd, p.n_vocab});
  b.norm("output_norm.weight", p.n_embd);
  if (!p.tied_embeddings) b.matrix("output.weight", {p.n_embd, p.n_vocab});
}

void swiglu_ffn(SpecBuilder& b, int64_t il, int64_t n_embd, int64_t n_ff) {
  b.matrix(SpecBuilder::blk(il, "ffn_gate.weight"), {n_embd, n_ff});
  b.matrix(SpecBuilder::blk(il, "ffn_up.weight"), {n_embd, n_ff});
  b.matrix(SpecBuilder::blk(il, "ffn_down.weight"), {n_ff, n_embd});
}

// Llama 3 long-context rope factors, as convert_hf_to_gguf.py computes them from
// rope_scaling {factor, low_freq_factor, high_freq_factor, original_max_position_embeddings};
// ggml divides each pair's frequency by its factor.
std::vector<float> llama3_rope_factors(const ShapeParams& p) {
  std::vector<float> factors;
  const double low_wavelen = p.rope_orig_ctx / p.rope_low_freq_factor;
  const double high_wavelen = p.rope_orig_ctx / p.rope_high_freq_factor;
  for (int64_t i = 0; i < p.n_rot / 2; ++i) {
    const double freq = 1.0 / std::pow(p.rope_base, 2.0 * i / p.n_rot);
    const double wavelen = 2 * std::numbers::pi / freq;
    double f = 1.0;
    if (wavelen > low_wavelen) {
      f = p.rope_scaling_factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth = (p.rope_orig_ctx / wavelen - p.rope_low_freq_factor) /
                            (p.rope_high_freq_factor - p.rope_low_freq_factor);
      f = 1.0 / ((1 - smooth) / p.rope_scaling_factor + smooth);
    }
    factors.push_back(static_cast<float>(f));
  }
  return factors;
}

// llama (src/models/llama.cpp) and qwen3 (src/models/qwen3.cpp): dense decoder, GQA.
void build_llama_like(SpecBuilder& b, const ShapeParams& p) {
  const bool qk_norm = p.arch == "qwen3";
  common_keys(b, p);
  b.u32("feed_forward_length", p.n_ff);
  b.u32("attention.head_count", p.n_head);
  b.u32("attention.head_count_kv", p.n_head_kv);
  if (qk_norm) {
    b.u32("attention.key_length", p.head_dim);
    b.u32("attention.value_length", p.head_dim);
  } else {
    b.u32("rope.dimension_count", p.n_rot);
    b.u32("vocab_size", p.n_vocab);
  }
  b.f32("rope.freq_base", p.rope_base);
  b.f32("attention.layer_norm_rms_epsilon", p.rms_eps);

  io_tensors(b, p);
  if (p.rope_scaling == "llama3")
    b.tensor("rope_freqs.weight", {p.n_rot / 2}, {InitKind::kValues}, llama3_rope_factors(p));
  const int64_t q_dim = p.n_head * p.head_dim, kv_dim = p.n_head_kv * p.head_dim;
  for (int64_t il = 0; il < p.n_layer; ++il) {
    b.norm(SpecBuilder::blk(il, "attn_norm.weight"), p.n_embd);
    b.matrix(SpecBuilder::blk(il, "attn_q.weight"), {p.n_embd, q_dim});
    b.matrix(SpecBuilder::blk(il, "attn_k.weight"), {p.n_embd, kv_dim});
    b.matrix(SpecBuilder::blk(il, "attn_v.weight"), {p.n_embd, kv_dim});
    b.matrix(SpecBuilder::blk(il, "attn_output.weight"), {q_dim, p.n_embd});
    if (qk_norm) {
      b.norm(SpecBuilder::blk(il, "attn_q_norm.weight"), p.head_dim);
      b.norm(SpecBuilder::blk(il, "attn_k_norm.weight"), p.head_dim);
    }
    b.norm(SpecBuilder::blk(il, "ffn_norm.weight"), p.n_embd);
    swiglu_ffn(b, il, p.n_embd, p.n_ff);
  }
}

// qwen35 / qwen35moe (src/models/qwen35*.cpp): Gated DeltaNet layers with every
// full_attention_interval-th layer a gated full-attention layer; dense or MoE FFN.
void build_qwen35(SpecBuilder& b, const ShapeParams& p) {
  const bool moe = p.arch == "qwen35moe";
  common_keys(b, p);
  if (p.n_ff > 0) b.u32("feed_forward_length", p.n_ff);
  b.u32("attention.head_count", p.n_head);
  b.u32("attention.head_count_kv", p.n_head_kv);
  b.f32("attention.layer_norm_rms_epsilon", p.rms_eps);
  b.u32("attention.key_length", p.head_dim);
  b.u32("attention.value_length", p.head_dim);
  b.f32("rope.freq_base", p.rope_base);
  b.u32("rope.dimension_count", p.n_rot);
  b.i32_array("rope.dimension_sections", p.rope_sections);
  b.u32("ssm.conv_kernel", p.ssm_conv_kernel);
  b.u32("ssm.state_size", p.ssm_head_dim);
  b.u32("ssm.group_count", p.ssm_n_k_heads);
  b.u32("ssm.time_step_rank", p.ssm_n_v_heads);
  b.u32("ssm.inner_size", p.ssm_head_dim * p.ssm_n_v_heads);
  b.u32("full_attention_interval", p.full_attention_interval);
  if (moe) {
    b.u32("expert_count", p.n_expert);
    b.u32("expert_used_count", p.n_expert_used);
    b.u32("expert_feed_forward_length", p.n_ff_exp);
    b.u32("expert_shared_feed_forward_length", p.n_ff_shexp);
  }

  io_tensors(b, p);
  const int64_t key_dim = p.ssm_head_dim * p.ssm_n_k_heads;
  const int64_t value_dim = p.ssm_head_dim * p.ssm_n_v_heads;
  const int64_t q_dim = p.n_head * p.head_dim, kv_dim = p.n_head_kv * p.head_dim;
  for (int64_t il = 0; il < p.n_layer; ++il) {
    auto name = [il](const char* s) { return SpecBuilder::blk(il, s); };
    b.norm(name("attn_norm.weight"), p.n_embd);
    b.norm(name("post_attention_norm.weight"), p.n_embd);
    if (p.is_recurrent(il)) {
      b.matrix(name("attn_qkv.weight"), {p.n_embd, 2 * key_dim + value_dim});
      b.matrix(name("attn_gate.weight"), {p.n_embd, value_dim});
      b.tensor(name("ssm_conv1d.weight"), {p.ssm_conv_kernel, 2 * key_dim + value_dim},
               {InitKind::kNormal, 0.1f, 0});
      b.tensor(name("ssm_dt.bias"), {p.ssm_n_v_heads}, {InitKind::kUniform, 0.5f, 1.5f});
      // ssm_a is stored as -exp(A_log): negative, so the decay exp(g) stays in (0, 1).
      b.tensor(name("ssm_a"), {p.ssm_n_v_heads}, {InitKind::kUniform, -1.0f, -0.1f});
      b.matrix(name("ssm_beta.weight"), {p.n_embd, p.ssm_n_v_heads});
      b.matrix(name("ssm_alpha.weight"), {p.n_embd, p.ssm_n_v_heads});
      b.norm(name("ssm_norm.weight"), p.ssm_head_dim);
      b.matrix(name("ssm_out.weight"), {value_dim, p.n_embd});
    } else {
      // attn_q yields each head's queries followed by its output-gate values.
      b.matrix(name("attn_q.weight"), {p.n_embd, 2 * q_dim});
      b.matrix(name("attn_k.weight"), {p.n_embd, kv_dim});
      b.matrix(name("attn_v.weight"), {p.n_embd, kv_dim});
      b.matrix(name("attn_output.weight"), {q_dim, p.n_embd});
      b.norm(name("attn_q_norm.weight"), p.head_dim);
      b.norm(name("attn_k_norm.weight"), p.head_dim);
    }
    if (!moe) {
      swiglu_ffn(b, il, p.n_embd, p.n_ff);
      continue;
    }
    b.tensor(name("ffn_gate_inp.weight"), {p.n_embd, p.n_expert}, {InitKind::kNormal, 0.3f, 0});
    b.matrix(name("ffn_gate_up_exps.weight"), {p.n_embd, 2 * p.n_ff_exp, p.n_expert});
    b.matrix(name("ffn_down_exps.weight"), {p.n_ff_exp, p.n_embd, p.n_expert});
    b.matrix(name("ffn_gate_inp_shexp.weight"), {p.n_embd});
    b.matrix(name("ffn_gate_shexp.weight"), {p.n_embd, p.n_ff_shexp});
    b.matrix(name("ffn_up_shexp.weight"), {p.n_embd, p.n_ff_shexp});
    b.matrix(name("ffn_down_shexp.weight"), {p.n_ff_shexp, p.n_embd});
  }
}

// gemma4 (src/models/gemma4.cpp): sliding/global layers with per-layer head sizes and KV
// heads, K=V global attention, KV sharing, optional per-layer embeddings and MoE blocks.
void build_gemma4(SpecBuilder& b, const ShapeParams& p) {
  std::vector<int64_t> n_ff, n_head_kv;
  std::vector<bool> sliding;
  for (int64_t il = 0; il < p.n_layer; ++il) {
    n_ff.push_back(p.layer_n_ff(il));
    n_head_kv.push_back(p.layer_n_head_kv(il));
    sliding.push_back(p.is_swa(il));
  }
  common_keys(b, p);
  b.i32_array("feed_forward_length", n_ff);
  b.u32("attention.head_count", p.n_head);
  b.i32_array("attention.head_count_kv", n_head_kv);
  b.f32("attention.layer_norm_rms_epsilon", p.rms_eps);
  b.u32("attention.key_length", p.head_dim);
  b.u32("attention.value_length", p.head_dim);
  b.u32("attention.key_length_swa", p.head_dim_swa);
  b.u32("attention.value_length_swa", p.head_dim_swa);
  b.u32("rope.dimension_count", p.n_rot);
  b.u32("rope.dimension_count_swa", p.n_rot_swa);
  b.f32("rope.freq_base", p.rope_base);
  b.f32("rope.freq_base_swa", p.rope_base_swa);
  b.u32("attention.sliding_window", p.n_swa);
  b.bool_array("attention.sliding_window_pattern", sliding);
  b.u32("attention.shared_kv_layers", p.n_kv_shared);
  b.u32("embedding_length_per_layer_input", p.n_embd_per_layer);  // required, 0 = none
  if (p.final_logit_softcap > 0) b.f32("final_logit_softcapping", p.final_logit_softcap);
  if (p.n_expert > 0) {
    b.u32("expert_count", p.n_expert);
    b.u32("expert_used_count", p.n_expert_used);
    b.u32("expert_feed_forward_length", p.n_ff_exp);
  }

  const int64_t n_pl = p.n_embd_per_layer;
  if (n_pl > 0) {
    b.tensor("per_layer_model_proj.weight", {p.n_embd, n_pl * p.n_layer},
             {InitKind::kNormal, kWeightStd, 0});
    b.norm("per_layer_proj_norm.weight", n_pl);
    b.matrix("per_layer_token_embd.weight", {n_pl * p.n_layer, p.n_vocab});
  }
  io_tensors(b, p);
  // Proportional rope of the global layers: pairs past the rotated fraction get a factor
  // of 1e30, which makes their angle ~0 (as convert_hf_to_gguf.py writes it).
  bool any_global = false;
  for (int64_t il = 0; il < p.n_layer; ++il) any_global |= !p.is_swa(il);
  if (any_global) {
    const int64_t n_pairs = p.head_dim / 2;
    const auto n_rotated = static_cast<int64_t>(std::lround(n_pairs * p.rope_partial_factor));
    std::vector<float> factors(static_cast<size_t>(n_pairs), 1e30f);
    std::fill(factors.begin(), factors.begin() + n_rotated, 1.0f);
    b.tensor("rope_freqs.weight", {n_pairs}, {InitKind::kValues}, std::move(factors));
  }

  for (int64_t il = 0; il < p.n_layer; ++il) {
    auto name = [il](const char* s) { return SpecBuilder::blk(il, s); };
    const int64_t hd = p.layer_head_dim(il);
    const int64_t kv_dim = hd * p.layer_n_head_kv(il);
    const int64_t ff = p.layer_n_ff(il);
    b.norm(name("attn_norm.weight"), p.n_embd);
    b.matrix(name("attn_q.weight"), {p.n_embd, hd * p.n_head});
    if (p.has_kv(il)) {
      b.matrix(name("attn_k.weight"), {p.n_embd, kv_dim});
      if (p.is_swa(il) || !p.k_eq_v) b.matrix(name("attn_v.weight"), {p.n_embd, kv_dim});
      b.norm(name("attn_k_norm.weight"), hd);
    }
    b.matrix(name("attn_output.weight"), {hd * p.n_head, p.n_embd});
    b.norm(name("attn_q_norm.weight"), hd);
    b.norm(name("post_attention_norm.weight"), p.n_embd);
    b.tensor(name("layer_output_scale.weight"), {1}, {InitKind::kUniform, 0.5f, 1.0f});
    b.norm(name("ffn_norm.weight"), p.n_embd);
    swiglu_ffn(b, il, p.n_embd, ff);
    b.norm(name("post_ffw_norm.weight"), p.n_embd);
    if (p.is_moe_layer(il)) {
      b.tensor(name("ffn_gate_inp.weight"), {p.n_embd, p.n_expert}, {InitKind::kNormal, 1.0f, 0});
      b.tensor(name("ffn_gate_inp.scale"), {p.n_embd}, {InitKind::kUniform, 0.5f, 1.5f});
      b.norm(name("pre_ffw_norm_2.weight"), p.n_embd);
      b.norm(name("post_ffw_norm_1.weight"), p.n_embd);
      b.norm(name("post_ffw_norm_2.weight"), p.n_embd);
      b.matrix(name("ffn_gate_up_exps.weight"), {p.n_embd, 2 * p.n_ff_exp, p.n_expert});
      b.matrix(name("ffn_down_exps.weight"), {p.n_ff_exp, p.n_embd, p.n_expert});
      b.tensor(name("ffn_down_exps.scale"), {p.n_expert}, {InitKind::kUniform, 0.5f, 1.5f});
    }
    if (n_pl > 0) {
      b.matrix(name("inp_gate.weight"), {p.n_embd, n_pl});
      b.matrix(name("proj.weight"), {n_pl, p.n_embd});
      b.norm(name("post_norm.weight"), p.n_embd);
    }
  }
}

// gpt-oss (llama.cpp LLM_ARCH_OPENAI_MOE, src/models/openai-moe.cpp): biased attention
// with sinks, alternating sliding/full layers, biased MoE experts, YaRN rope.
void build_gpt_oss(SpecBuilder& b, const ShapeParams& p) {
  common_keys(b, p);
  b.u32("feed_forward_length", p.n_ff);
  b.u32("attention.head_count", p.n_head);
  b.u32("attention.head_count_kv", p.n_head_kv);
  b.f32("attention.layer_norm_rms_epsilon", p.rms_eps);
  b.u32("attention.key_length", p.head_dim);
  b.u32("attention.value_length", p.head_dim);
  b.u32("rope.dimension_count", p.n_rot);
  b.f32("rope.freq_base", p.rope_base);
  if (p.rope_scaling == "yarn") {
    b.str("rope.scaling.type", "yarn");
    b.f32("rope.scaling.factor", p.rope_scaling_factor);
    b.u32("rope.scaling.original_context_length", p.rope_orig_ctx);
  }
  b.u32("attention.sliding_window", p.n_swa);
  b.u32("expert_count", p.n_expert);
  b.u32("expert_used_count", p.n_expert_used);
  b.u32("expert_feed_forward_length", p.n_ff_exp);

  io_tensors(b, p);
  const TensorInit bias{InitKind::kNormal, 0.02f, 0};
  const int64_t q_dim = p.n_head * p.head_dim, kv_dim = p.n_head_kv * p.head_dim;
  for (int64_t il = 0; il < p.n_layer; ++il) {
    auto name = [il](const char* s) { return SpecBuilder::blk(il, s); };
    b.norm(name("attn_norm.weight"), p.n_embd);
    b.norm(name("post_attention_norm.weight"), p.n_embd);
    b.matrix(name("attn_q.weight"), {p.n_embd, q_dim});
    b.tensor(name("attn_q.bias"), {q_dim}, bias);
    b.matrix(name("attn_k.weight"), {p.n_embd, kv_dim});
    b.tensor(name("attn_k.bias"), {kv_dim}, bias);
    b.matrix(name("attn_v.weight"), {p.n_embd, kv_dim});
    b.tensor(name("attn_v.bias"), {kv_dim}, bias);
    b.matrix(name("attn_output.weight"), {q_dim, p.n_embd});
    b.tensor(name("attn_output.bias"), {p.n_embd}, bias);
    b.tensor(name("attn_sinks.weight"), {p.n_head}, {InitKind::kNormal, 1.0f, 0});
    b.tensor(name("ffn_gate_inp.weight"), {p.n_embd, p.n_expert}, {InitKind::kNormal, 0.3f, 0});
    b.tensor(name("ffn_gate_inp.bias"), {p.n_expert}, {InitKind::kNormal, 0.1f, 0});
    b.matrix(name("ffn_gate_exps.weight"), {p.n_embd, p.n_ff_exp, p.n_expert});
    b.tensor(name("ffn_gate_exps.bias"), {p.n_ff_exp, p.n_expert}, bias);
    b.matrix(name("ffn_up_exps.weight"), {p.n_embd, p.n_ff_exp, p.n_expert});
    b.tensor(name("ffn_up_exps.bias"), {p.n_ff_exp, p.n_expert}, bias);
    b.matrix(name("ffn_down_exps.weight"), {p.n_ff_exp, p.n_embd, p.n_expert});
    b.tensor(name("ffn_down_exps.bias"), {p.n_embd, p.n_expert}, bias);
  }
}

}  // namespace

Expected<SynthSpec> build_spec(const ShapeParams& params) {
  ShapeParams p = with_defaults(params);
  LOUPE_TRY(validate(p));
  SynthSpec spec;
  spec.arch = p.arch;
  spec.n_vocab = p.n_vocab;
  spec.metadata.push_back({"general.architecture", Value::str(p.arch)});
  spec.metadata.push_back({"general.name", Value::str(p.name)});
  SpecBuilder b(spec);
  if (p.arch == "llama" || p.arch == "qwen3") {
    build_llama_like(b, p);
  } else if (p.arch == "qwen35" || p.arch == "qwen35moe") {
    build_qwen35(b, p);
  } else if (p.arch == "gemma4") {
    build_gemma4(b, p);
  } else {
    build_gpt_oss(b, p);
  }
  spec.params = std::move(p);
  return spec;
}

}  // namespace loupe::model
