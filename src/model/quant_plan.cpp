#include "model/quant_plan.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <numeric>

namespace loupe::model {

namespace {

using FT = FileType;

constexpr FileTypeInfo kFileTypes[] = {
    {FT::kF32, "f32", DType::kF32},           {FT::kF16, "f16", DType::kF16},
    {FT::kBF16, "bf16", DType::kBF16},        {FT::kQ8_0, "q8_0", DType::kQ8_0},
    {FT::kQ4_0, "q4_0", DType::kQ4_0},        {FT::kQ4_1, "q4_1", DType::kQ4_1},
    {FT::kQ5_0, "q5_0", DType::kQ5_0},        {FT::kQ5_1, "q5_1", DType::kQ5_1},
    {FT::kQ2_K, "q2_k", DType::kQ2_K},        {FT::kQ3_K_S, "q3_k_s", DType::kQ3_K},
    {FT::kQ3_K_M, "q3_k_m", DType::kQ3_K},    {FT::kQ3_K_L, "q3_k_l", DType::kQ3_K},
    {FT::kQ4_K_S, "q4_k_s", DType::kQ4_K},    {FT::kQ4_K_M, "q4_k_m", DType::kQ4_K},
    {FT::kQ5_K_S, "q5_k_s", DType::kQ5_K},    {FT::kQ5_K_M, "q5_k_m", DType::kQ5_K},
    {FT::kQ6_K, "q6_k", DType::kQ6_K},        {FT::kIQ4_NL, "iq4_nl", DType::kIQ4_NL},
    {FT::kIQ4_XS, "iq4_xs", DType::kIQ4_XS},  {FT::kMXFP4_MOE, "mxfp4_moe", DType::kMXFP4},
};

// llama-quant.cpp's broad tensor categories, matched on name substrings in this order.
enum class Category { kOutput, kTokenEmbd, kAttnQkv, kAttnKvB, kAttnV, kAttnK, kAttnQ,
                      kAttnOutput, kFfnUp, kFfnGate, kFfnDown, kOther, kCount };

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

Category category_of(const std::string& name, QuantRules rules) {
  if (name == "output.weight") return Category::kOutput;
  if (name == "token_embd.weight") return Category::kTokenEmbd;
  if (name == "per_layer_token_embd.weight" && rules == QuantRules::kCurrent)
    return Category::kTokenEmbd;
  if (contains(name, "attn_qkv.weight")) return Category::kAttnQkv;
  if (contains(name, "attn_kv_b.weight")) return Category::kAttnKvB;
  if (contains(name, "attn_v.weight")) return Category::kAttnV;
  if (contains(name, "attn_k.weight")) return Category::kAttnK;
  if (contains(name, "attn_q.weight")) return Category::kAttnQ;
  if (contains(name, "attn_output.weight")) return Category::kAttnOutput;
  if (contains(name, "ffn_up")) return Category::kFfnUp;
  if (contains(name, "ffn_gate")) return Category::kFfnGate;
  if (contains(name, "ffn_down")) return Category::kFfnDown;
  return Category::kOther;
}

// Tensors that share attn_v's sensitivity (and its layer counter).
bool is_attn_v_like(Category c, QuantRules rules) {
  if (rules == QuantRules::kB4748) return c == Category::kAttnV;
  return c == Category::kAttnV || c == Category::kAttnQkv || c == Category::kAttnKvB;
}

int n_dims(const std::vector<int64_t>& ne) {
  int n = 1;
  for (size_t i = 0; i < ne.size(); ++i)
    if (ne[i] > 1) n = static_cast<int>(i) + 1;
  return n;
}

// The layer index in "blk.N.", or -1 (llama_model_loader's weight_name_comparer).
int layer_of(const std::string& name) {
  int il = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &il) != 1) return -1;
  return il;
}

// More bits for the first and last eighth of the layers and every third one between.
bool use_more_bits(int64_t i_layer, int64_t n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 ||
         (i_layer - n_layers / 8) % 3 == 2;
}

int64_t block_size(DType t) { return dtype_traits(t).block_size; }

struct PlanState {
  const PlanModel& model;
  FileType ftype;
  QuantRules rules;
  bool tied_embeddings = true;  // until an output.weight is seen
  int64_t n_attn_v = 0;
  int64_t i_attn_v = 0;
  int64_t i_ffn_down = 0;

  bool is_falcon() const { return model.arch == "falcon"; }
  int64_t n_gqa() const { return model.n_head_kv > 0 ? model.n_head / model.n_head_kv : 0; }
  // llama.cpp's LLM_TYPE_70B: 80-layer llama with GQA.
  bool is_70b() const {
    return model.arch == "llama" && model.n_layer == 80 && model.n_head != model.n_head_kv;
  }
};

// The mixture rules for one quantizable tensor (llama_tensor_get_type_impl), restricted
// to the file types offered here (no IQ1/IQ2/IQ3, no importance matrix).
DType choose_type(PlanState& s, const PlanTensor& t, Category cat, DType type) {
  const FT ft = s.ftype;
  const bool current = s.rules == QuantRules::kCurrent;
  if (cat == Category::kOutput || (s.tied_embeddings && cat == Category::kTokenEmbd)) {
    if (ft == FT::kMXFP4_MOE && current) return DType::kQ8_0;
    if (s.is_falcon() || t.ne[0] % block_size(type) != 0) return DType::kQ8_0;
    return type == DType::kQ8_0 ? type : DType::kQ6_K;
  }
  if (ft == FT::kMXFP4_MOE && current) {
    return t.ne.size() > 2 && t.ne[2] > 1 ? DType::kMXFP4 : DType::kQ8_0;
  }
  if (cat == Category::kTokenEmbd) return type;

  if (is_attn_v_like(cat, s.rules)) {
    if (ft == FT::kQ2_K) {
      type = s.n_gqa() >= 4 ? DType::kQ4_K : DType::kQ3_K;
    } else if (ft == FT::kQ3_K_M) {
      type = s.i_attn_v < 2 ? DType::kQ5_K : DType::kQ4_K;
    } else if (ft == FT::kQ3_K_L) {
      type = DType::kQ5_K;
    } else if ((ft == FT::kIQ4_NL || ft == FT::kIQ4_XS) && s.n_gqa() >= 4) {
      type = DType::kQ5_K;
    } else if ((ft == FT::kQ4_K_M || ft == FT::kQ5_K_M) && use_more_bits(s.i_attn_v, s.n_attn_v)) {
      type = DType::kQ6_K;
    } else if (ft == FT::kQ4_K_S && s.i_attn_v < 4) {
      type = DType::kQ5_K;
    }
    if (s.is_70b() && (type == DType::kQ3_K || type == DType::kQ4_K)) type = DType::kQ5_K;
    if (s.model.n_expert == 8) type = DType::kQ8_0;
    ++s.i_attn_v;
    return type;
  }
  if (cat == Category::kAttnK) return s.model.n_expert == 8 ? DType::kQ8_0 : type;
  if (cat == Category::kFfnDown) {
    // MoE models name the layer (their expert tensors are not in layer order).
    const int64_t n_layer = s.model.n_layer;
    const int64_t il = s.model.n_expert > 1 ? layer_of(t.name) : s.i_ffn_down;
    ++s.i_ffn_down;
    if (ft == FT::kQ2_K) return DType::kQ3_K;
    if (ft == FT::kQ3_K_M) {
      if (il < n_layer / 16) return DType::kQ5_K;
      return !s.is_falcon() || use_more_bits(il, n_layer) ? DType::kQ4_K : DType::kQ3_K;
    }
    if (ft == FT::kQ3_K_L) return s.is_falcon() ? DType::kQ4_K : DType::kQ5_K;
    if (ft == FT::kQ4_K_M) {
      if (s.is_falcon())
        return il < n_layer / 16        ? DType::kQ6_K
               : use_more_bits(il, n_layer) ? DType::kQ5_K
                                            : DType::kQ4_K;
      return use_more_bits(il, n_layer) ? DType::kQ6_K : type;
    }
    if (il < n_layer / 8 && (ft == FT::kIQ4_NL || ft == FT::kIQ4_XS)) return DType::kQ5_K;
    if (ft == FT::kQ5_K_M) return use_more_bits(il, n_layer) ? DType::kQ6_K : type;
    if (ft == FT::kQ4_K_S && !s.is_falcon() && il < n_layer / 8) return DType::kQ5_K;
    return type;
  }
  if (cat == Category::kAttnOutput) {
    if (s.is_falcon()) return ft == FT::kQ3_K_L ? DType::kQ4_K : type;
    if (s.model.n_expert == 8) {
      const bool bump = ft == FT::kQ2_K || ft == FT::kQ3_K_S || ft == FT::kQ3_K_M ||
                        ft == FT::kIQ4_NL || ft == FT::kQ4_K_S || ft == FT::kQ4_K_M ||
                        ft == FT::kIQ4_XS;
      return bump ? DType::kQ5_K : type;
    }
    if (ft == FT::kQ2_K) return DType::kQ3_K;
    if (ft == FT::kQ3_K_M) return DType::kQ4_K;
    if (ft == FT::kQ3_K_L) return DType::kQ5_K;
    return type;
  }
  if (cat == Category::kAttnQkv) {  // only reached with the b4748 rules
    if (ft == FT::kQ3_K_M || ft == FT::kQ3_K_L) return DType::kQ4_K;
    if (ft == FT::kQ4_K_M) return DType::kQ5_K;
    if (ft == FT::kQ5_K_M) return DType::kQ6_K;
  }
  return type;
}

// A type whose block does not divide the row length falls back to a 32-wide type, and
// to F16 if even that does not fit (tensor_type_fallback).
Expected<DType> fallback(const PlanTensor& t, DType type, QuantRules rules) {
  const int64_t n_cols = t.ne[0];
  if (n_cols % block_size(type) == 0) return type;
  DType to;
  switch (type) {
    case DType::kIQ4_XS: to = DType::kIQ4_NL; break;
    case DType::kQ2_K:
    case DType::kQ3_K: to = rules == QuantRules::kB4748 ? DType::kIQ4_NL : DType::kQ4_0; break;
    case DType::kQ4_K: to = DType::kQ5_0; break;
    case DType::kQ5_K: to = DType::kQ5_1; break;
    case DType::kQ6_K: to = DType::kQ8_0; break;
    default:
      return make_error(ErrorCode::kUnsupported,
                        "tensor '{}': row length {} is not a multiple of {}'s block size {} and "
                        "llama-quantize has no fallback for it",
                        t.name, n_cols, dtype_name(type), block_size(type));
  }
  return n_cols % block_size(to) == 0 ? to : DType::kF16;
}

}  // namespace

std::span<const FileTypeInfo> file_types() { return kFileTypes; }

const FileTypeInfo& file_type_info(FileType type) {
  for (const FileTypeInfo& info : kFileTypes)
    if (info.type == type) return info;
  assert(false && "FileType without a table row");
  return kFileTypes[0];
}

std::string_view file_type_name(FileType type) { return file_type_info(type).name; }

std::optional<FileType> file_type_from_name(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const FileTypeInfo& info : kFileTypes)
    if (info.name == lower) return info.type;
  return std::nullopt;
}

std::optional<FileType> file_type_from_id(uint32_t id) {
  for (const FileTypeInfo& info : kFileTypes)
    if (static_cast<uint32_t>(info.type) == id) return info.type;
  return std::nullopt;
}

std::string file_type_names() {
  std::string out;
  for (const FileTypeInfo& info : kFileTypes) {
    if (!out.empty()) out += ", ";
    out += info.name;
  }
  return out;
}

bool tensor_allows_quantization(const PlanTensor& t) {
  const std::string& name = t.name;
  if (n_dims(t.ne) < 2) return false;
  if (name.size() < 6 || name.compare(name.size() - 6, 6, "weight") != 0) return false;
  static constexpr std::string_view kKeep[] = {
      "_norm.weight",      "ffn_gate_inp.weight",  "altup",
      "laurel",            "per_layer_model_proj", "ssm_conv1d",
      "shortconv.conv.weight", "time_mix_first.weight", "time_mix_w0.weight",
      "time_mix_w1.weight", "time_mix_w2.weight",  "time_mix_v0.weight",
      "time_mix_v1.weight", "time_mix_v2.weight",  "time_mix_a0.weight",
      "time_mix_a1.weight", "time_mix_a2.weight",  "time_mix_g1.weight",
      "time_mix_g2.weight", "time_mix_decay_w1.weight", "time_mix_decay_w2.weight",
      "time_mix_lerp_fused.weight", "attn_rel_b.weight", ".position_embd",
      ".rel_pos",          ".patch_embd",          ".patch_merger"};
  for (std::string_view part : kKeep)
    if (contains(name, part)) return false;
  return name != "position_embd.weight" && name != "token_types.weight";
}

Expected<std::vector<DType>> plan_tensor_types(std::span<const PlanTensor> tensors,
                                               const PlanModel& model, FileType file_type,
                                               QuantRules rules) {
  const DType default_type = file_type_info(file_type).default_type;
  PlanState state{model, file_type, rules};
  for (const PlanTensor& t : tensors) {
    const Category c = category_of(t.name, rules);
    if (c == Category::kOutput) state.tied_embeddings = false;
    if (c == Category::kAttnV || c == Category::kAttnQkv || c == Category::kAttnKvB)
      ++state.n_attn_v;
  }

  // llama-quantize visits tensors by layer, then by name; the counters depend on it.
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const int la = layer_of(tensors[a].name), lb = layer_of(tensors[b].name);
    if (la != lb) return la < lb;
    return tensors[a].name < tensors[b].name;
  });

  std::vector<DType> types(tensors.size());
  const bool mix = dtype_traits(default_type).quantized;
  for (size_t i : order) {
    const PlanTensor& t = tensors[i];
    if (!tensor_allows_quantization(t)) {
      types[i] = t.type;
      continue;
    }
    DType type = default_type;
    if (mix) {
      type = choose_type(state, t, category_of(t.name, rules), type);
      LOUPE_ASSIGN_OR_RETURN(type, fallback(t, type, rules));
    }
    types[i] = type;
  }
  return types;
}

}  // namespace loupe::model
