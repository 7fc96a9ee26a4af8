#include "tensor/dtype.h"

#include <array>
#include <cassert>
#include <cctype>

namespace loupe {
namespace {

struct Entry {
  DType type;
  DTypeTraits traits;
};

// Block sizes and byte sizes from the GGUF block layouts (ggml-common.h structs).
constexpr Entry kEntries[] = {
    {DType::kF32, {"F32", 1, 4, false}},
    {DType::kF16, {"F16", 1, 2, false}},
    {DType::kQ4_0, {"Q4_0", 32, 2 + 16, true}},
    {DType::kQ4_1, {"Q4_1", 32, 4 + 16, true}},
    {DType::kQ5_0, {"Q5_0", 32, 2 + 4 + 16, true}},
    {DType::kQ5_1, {"Q5_1", 32, 4 + 4 + 16, true}},
    {DType::kQ8_0, {"Q8_0", 32, 2 + 32, true}},
    {DType::kQ8_1, {"Q8_1", 32, 4 + 32, true}},
    {DType::kQ2_K, {"Q2_K", 256, 16 + 64 + 4, true}},
    {DType::kQ3_K, {"Q3_K", 256, 32 + 64 + 12 + 2, true}},
    {DType::kQ4_K, {"Q4_K", 256, 4 + 12 + 128, true}},
    {DType::kQ5_K, {"Q5_K", 256, 4 + 12 + 32 + 128, true}},
    {DType::kQ6_K, {"Q6_K", 256, 128 + 64 + 16 + 2, true}},
    {DType::kQ8_K, {"Q8_K", 256, 4 + 256 + 32, true}},
    {DType::kIQ2_XXS, {"IQ2_XXS", 256, 2 + 64, true}},
    {DType::kIQ2_XS, {"IQ2_XS", 256, 2 + 64 + 8, true}},
    {DType::kIQ3_XXS, {"IQ3_XXS", 256, 2 + 96, true}},
    {DType::kIQ1_S, {"IQ1_S", 256, 2 + 32 + 16, true}},
    {DType::kIQ4_NL, {"IQ4_NL", 32, 2 + 16, true}},
    {DType::kIQ3_S, {"IQ3_S", 256, 2 + 64 + 8 + 32 + 4, true}},
    {DType::kIQ2_S, {"IQ2_S", 256, 2 + 64 + 8 + 8, true}},
    {DType::kIQ4_XS, {"IQ4_XS", 256, 2 + 2 + 4 + 128, true}},
    {DType::kI8, {"I8", 1, 1, false}},
    {DType::kI16, {"I16", 1, 2, false}},
    {DType::kI32, {"I32", 1, 4, false}},
    {DType::kI64, {"I64", 1, 8, false}},
    {DType::kF64, {"F64", 1, 8, false}},
    {DType::kIQ1_M, {"IQ1_M", 256, 32 + 16 + 8, true}},
    {DType::kBF16, {"BF16", 1, 2, false}},
    {DType::kTQ1_0, {"TQ1_0", 256, 48 + 4 + 2, true}},
    {DType::kTQ2_0, {"TQ2_0", 256, 64 + 2, true}},
    {DType::kMXFP4, {"MXFP4", 32, 1 + 16, true}},
};

constexpr std::array<const DTypeTraits*, static_cast<size_t>(DType::kCount)> make_table() {
  std::array<const DTypeTraits*, static_cast<size_t>(DType::kCount)> table{};
  for (const Entry& e : kEntries) table[static_cast<size_t>(e.type)] = &e.traits;
  return table;
}

constexpr auto kTable = make_table();

}  // namespace

const DTypeTraits* dtype_traits(uint32_t id) {
  if (id >= kTable.size()) return nullptr;
  return kTable[id];
}

const DTypeTraits& dtype_traits(DType type) {
  const DTypeTraits* t = dtype_traits(static_cast<uint32_t>(type));
  assert(t != nullptr);
  return *t;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const Entry& e : kEntries) {
    if (e.traits.name.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i)
      same = std::toupper(static_cast<unsigned char>(name[i])) == e.traits.name[i];
    if (same) return e.type;
  }
  return std::nullopt;
}

}  // namespace loupe
