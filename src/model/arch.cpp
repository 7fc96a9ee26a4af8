#include "model/arch.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <thread>

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

namespace {

// Repacks the matrices the active ISA's kernels read faster in another layout, and lets the
// kernel drop the file's pages of those tensors: the copy replaces them (only token
// embeddings, whose rows are looked up, are read in place after this).
void pack_weights(Model& m) {
  if (kernels::PackedWeights::disabled()) return;
  const long page = sysconf(_SC_PAGESIZE);
  std::vector<const gguf::TensorInfo*> todo;
  for (const gguf::TensorInfo& t : m.file->tensors()) {
    if (t.ne.size() < 2 || t.name.find("token_embd") != std::string::npos) continue;
    // A 3-D tensor is a stack of matrices (experts): packed whole, so each slice must start on
    // a panel boundary (the kernel checks) — rows per slice a multiple of 16 keeps that true.
    if (t.ne.size() > 2 && t.ne[1] % 16 != 0) continue;
    todo.push_back(&t);
  }
  // Tensors are packed on every core (the copy is memory-bound: page faults on both sides).
  ThreadPool pool(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  pool.parallel_for(static_cast<int64_t>(todo.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const gguf::TensorInfo& t = *todo[static_cast<size_t>(i)];
      int64_t rows = 1;
      for (size_t d = 1; d < t.ne.size(); ++d) rows *= t.ne[d];
      const kernels::Matrix w{t.type, t.data, t.ne[0], rows, dtype_row_size(t.type, t.ne[0]),
                              nullptr};
      if (m.packed.add(w) == 0) continue;
      const uintptr_t first = (reinterpret_cast<uintptr_t>(t.data) + page - 1) / page * page;
      const uintptr_t last = (reinterpret_cast<uintptr_t>(t.data) + t.n_bytes) / page * page;
      if (last > first) (void)madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
    }
  });
}

}  // namespace

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
  pack_weights(*model);
  return model;
}

}  // namespace loupe::model
