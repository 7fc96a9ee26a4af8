// llama-quantize's file types and its per-tensor type choice (`llama_tensor_get_type` in
// llama.cpp's src/llama-quant.cpp), re-derived so `loupe synth` / `loupe quantize` mix
// types exactly as llama-quantize would for the same model and file type. Checked against
// the types llama-quantize chose in testdata ref/ and ref2026/ (tests/model).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tensor/dtype.h"

namespace loupe::model {

// llama.h `enum llama_ftype` ids; this is the value written to `general.file_type`.
enum class FileType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ8_0 = 7,
  kQ5_0 = 8,
  kQ5_1 = 9,
  kQ2_K = 10,
  kQ3_K_S = 11,
  kQ3_K_M = 12,
  kQ3_K_L = 13,
  kQ4_K_S = 14,
  kQ4_K_M = 15,
  kQ5_K_S = 16,
  kQ5_K_M = 17,
  kQ6_K = 18,
  kIQ4_NL = 25,
  kIQ4_XS = 30,
  kBF16 = 32,
  kMXFP4_MOE = 38,
};

struct FileTypeInfo {
  FileType type;
  std::string_view name;  // llama-quantize's name, lower case: "q4_k_m"
  DType default_type;     // llama_ftype_get_default_type
};

std::span<const FileTypeInfo> file_types();
const FileTypeInfo& file_type_info(FileType type);
std::string_view file_type_name(FileType type);
// Accepts llama-quantize's names in any case ("Q4_K_M", "q4_k_m").
std::optional<FileType> file_type_from_name(std::string_view name);
std::optional<FileType> file_type_from_id(uint32_t id);
// "f32, f16, ..." for error messages and --help.
std::string file_type_names();

// The llama.cpp version whose rules to follow. They differ only in details: b4748 gives
// fused attn_qkv its own rule (Q5_K for Q4_K_M) and falls back Q2_K/Q3_K -> IQ4_NL; the
// current rules treat attn_qkv like attn_v, fall back to Q4_0, know MXFP4_MOE and
// per_layer_token_embd.
enum class QuantRules { kCurrent, kB4748, kCount };

// What the rules need to know about the model (llama.cpp reads it from its hparams).
struct PlanModel {
  std::string arch;       // general.architecture
  int64_t n_layer = 0;
  int64_t n_head = 0;     // of layer 0
  int64_t n_head_kv = 0;  // of layer 0
  int64_t n_expert = 0;
};

struct PlanTensor {
  std::string name;
  std::vector<int64_t> ne;  // ggml order
  DType type = DType::kF32;  // the type it has before quantization
};

// Whether llama-quantize would convert this tensor at all (2-D+ weights that are not
// norms, routers, conv kernels...). Tensors it would not convert keep their type.
bool tensor_allows_quantization(const PlanTensor& tensor);

// The type of every tensor (same order as `tensors`) for `file_type`. Errors when a
// tensor's row length fits neither the chosen type nor llama-quantize's fallbacks.
Expected<std::vector<DType>> plan_tensor_types(std::span<const PlanTensor> tensors,
                                               const PlanModel& model, FileType file_type,
                                               QuantRules rules = QuantRules::kCurrent);

}  // namespace loupe::model
