#include "model/arch.h"

#include <array>

#include <fmt/ranges.h>

namespace loupe::model {
namespace arch {
// One per file in model/arch/. Listed here explicitly: self-registering statics would be
// dropped by the linker from a static library.
extern const Family kLlamaFamily;
extern const Family kQwen2Family;
extern const Family kQwen2MoeFamily;
extern const Family kQwen3Family;
extern const Family kQwen3MoeFamily;
extern const Family kPhi3Family;
extern const Family kGemma2Family;
extern const Family kGemma3Family;
extern const Family kGptOssFamily;
extern const Family kQwen35Family;
extern const Family kQwen35MoeFamily;
extern const Family kGemma4Family;
}  // namespace arch

namespace {

const std::array<const Family*, 12>& families() {
  static const std::array<const Family*, 12> kAll = {
      &arch::kLlamaFamily,    &arch::kQwen2Family,  &arch::kQwen2MoeFamily,  &arch::kQwen3Family,
      &arch::kQwen3MoeFamily, &arch::kPhi3Family,   &arch::kGemma2Family,    &arch::kGemma3Family,
      &arch::kGptOssFamily,   &arch::kQwen35Family, &arch::kQwen35MoeFamily, &arch::kGemma4Family,
  };
  return kAll;
}

}  // namespace

const Family* find_family(std::string_view arch) {
  for (const Family* f : families())
    if (f->spec->name == arch) return f;
  return nullptr;
}

std::vector<std::string_view> family_names() {
  std::vector<std::string_view> names;
  for (const Family* f : families()) names.push_back(f->spec->name);
  return names;
}

Expected<std::unique_ptr<Model>> load_model(const std::string& path) {
  auto model = std::make_unique<Model>();
  LOUPE_ASSIGN_OR_RETURN(gguf::File file, gguf::File::open(path));
  model->file = std::make_unique<gguf::File>(std::move(file));
  LOUPE_ASSIGN_OR_RETURN(model->hp, read_hparams(*model->file));
  Hparams& hp = model->hp;
  const Family* family = find_family(hp.arch);
  if (family == nullptr)
    return make_error(ErrorCode::kUnsupported,
                      "{}: architecture '{}' is not implemented yet (supported: {})", path, hp.arch,
                      fmt::join(family_names(), ", "));
  model->spec = family->spec;
  if (hp.n_vocab == 0)
    return make_error(ErrorCode::kCorrupt,
                      "{}: cannot tell the vocabulary size (no tokenizer.ggml.tokens "
                      "and no token_embd.weight)",
                      path);
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    if (hp.n_head[il] <= 0 || hp.n_head_kv[il] <= 0 || hp.n_head[il] % hp.n_head_kv[il] != 0)
      return make_error(ErrorCode::kCorrupt,
                        "{}: layer {}: head_count {} is not a multiple of head_count_kv {}", path,
                        il, hp.n_head[il], hp.n_head_kv[il]);
  }
  if (hp.rope_dims <= 0 || hp.rope_dims > hp.head_dim_k || hp.rope_dims % 2 != 0)
    return make_error(ErrorCode::kCorrupt, "{}: rope.dimension_count {} does not fit head dim {}",
                      path, hp.rope_dims, hp.head_dim_k);
  if (hp.n_expert > 0 && (hp.n_expert_used <= 0 || hp.n_expert_used > hp.n_expert))
    return make_error(ErrorCode::kCorrupt, "{}: expert_used_count {} is not in 1..expert_count {}",
                      path, hp.n_expert_used, hp.n_expert);
  Binder binder(*model->file);
  LOUPE_TRY(family->bind(binder, *model));
  return model;
}

}  // namespace loupe::model
