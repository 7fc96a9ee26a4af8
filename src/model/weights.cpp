#include "model/weights.h"

#include <cassert>

#include <fmt/ranges.h>

#include "tensor/quant.h"

namespace loupe::model {

kernels::Matrix Weight::matrix(int64_t expert) const {
  kernels::Matrix m;
  m.type = info->type;
  m.n_in = ne(0);
  m.n_out = ne(1);
  m.row_stride = dtype_row_size(info->type, m.n_in);
  m.data = info->data + static_cast<size_t>(expert) * m.row_stride * static_cast<size_t>(m.n_out);
  return m;
}

void Weight::row_f32(int64_t r, float* out) const {
  const size_t row_bytes = dtype_row_size(info->type, ne(0));
  dequantize_row_ref(info->type, info->data + static_cast<size_t>(r) * row_bytes, out, ne(0));
}

Weight Binder::req(const std::string& name, std::initializer_list<int64_t> ne) {
  return bind(name, ne, true);
}

Weight Binder::opt(const std::string& name, std::initializer_list<int64_t> ne) {
  return bind(name, ne, false);
}

Weight Binder::bind(const std::string& name, std::initializer_list<int64_t> ne, bool required) {
  const gguf::TensorInfo* t = file_.find_tensor(name);
  if (t == nullptr) {
    if (required) errors_.push_back(fmt::format("tensor '{}' is missing", name));
    return {};
  }
  std::vector<int64_t> want(ne);
  std::vector<int64_t> have = t->ne;
  while (!have.empty() && have.back() == 1 && have.size() > want.size()) have.pop_back();
  while (want.size() < have.size()) want.push_back(1);
  while (have.size() < want.size()) have.push_back(1);
  if (have != want) {
    errors_.push_back(fmt::format("tensor '{}' has shape [{}], expected [{}]", name,
                                  fmt::join(t->ne, ", "), fmt::join(ne, ", ")));
    return {};
  }
  if (want.size() >= 2 && want[1] > 1 && !kernels::matmul_supports(t->type)) {
    errors_.push_back(
        fmt::format("tensor '{}' has type {}, which cannot be used as a matmul weight", name,
                    dtype_name(t->type)));
    return {};
  }
  // Vectors (norms, biases, scales) are read element-wise as F32, as llama-quantize keeps them.
  if ((want.size() < 2 || want[1] == 1) && t->type != DType::kF32) {
    errors_.push_back(
        fmt::format("tensor '{}' has type {}, expected F32", name, dtype_name(t->type)));
    return {};
  }
  return Weight{t};
}

Status Binder::status() const {
  if (errors_.empty()) return Status::ok_status();
  return make_error(ErrorCode::kCorrupt, "{}: {} (the file does not match its architecture '{}')",
                    file_.path(), fmt::join(errors_, "; "), file_.architecture());
}

}  // namespace loupe::model
