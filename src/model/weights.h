// Weights bound by name to tensors of a GGUF file, used in place (never copied or
// dequantized as a whole). Binding checks presence and shape and says which tensor of
// which file is wrong.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/file.h"
#include "kernels/matmul.h"

namespace loupe::model {

// One tensor of the file; empty when an optional tensor is absent.
struct Weight {
  const gguf::TensorInfo* info = nullptr;

  explicit operator bool() const { return info != nullptr; }
  DType type() const { return info->type; }
  int64_t ne(size_t i) const { return i < info->ne.size() ? info->ne[i] : 1; }
  // Precondition: type() == F32 (norms, biases, routers kept in F32 by llama-quantize).
  const float* f32() const { return reinterpret_cast<const float*>(info->data); }
  // The matrix ne = [n_in, n_out] (slice `expert` of a 3-D [n_in, n_out, n_expert] tensor).
  kernels::Matrix matrix(int64_t expert = 0) const;
  // Row `r` of a 2-D tensor as F32 (token embeddings are looked up, not multiplied).
  void row_f32(int64_t r, float* out) const;
};

// Binds tensors by name, collecting every error so one message lists all of them.
class Binder {
 public:
  explicit Binder(const gguf::File& file) : file_(file) {}

  // A required tensor with exactly these dims (ggml order; trailing 1s may be omitted).
  Weight req(const std::string& name, std::initializer_list<int64_t> ne);
  // An optional tensor: absent is fine, present must have these dims.
  Weight opt(const std::string& name, std::initializer_list<int64_t> ne);
  // A matrix used in a matmul must also have a type the kernels support.
  Status status() const;
  const gguf::File& file() const { return file_; }

 private:
  Weight bind(const std::string& name, std::initializer_list<int64_t> ne, bool required);
  const gguf::File& file_;
  std::vector<std::string> errors_;
};

}  // namespace loupe::model
