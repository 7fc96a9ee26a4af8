// GGUF v3 writer. Tensor data is produced on demand, one tensor at a time, so files
// far larger than memory (synthetic 8B and 20B models) stream to disk.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/value.h"
#include "tensor/dtype.h"

namespace loupe::gguf {

class Writer {
 public:
  // Fills exactly the tensor's byte size; returns an error to abort the write.
  using Producer = std::function<Status(std::span<uint8_t> dst)>;

  explicit Writer(uint32_t alignment = 32) : alignment_(alignment) {}

  // Later sets of the same key replace the earlier value (order of first set is kept).
  void set(const std::string& key, Value value);
  Status add_tensor(const std::string& name, DType type, std::vector<int64_t> ne,
                    Producer producer);
  // Convenience: copies `bytes`, which must be the tensor's exact size.
  Status add_tensor_bytes(const std::string& name, DType type, std::vector<int64_t> ne,
                          std::span<const uint8_t> bytes);

  size_t n_tensors() const { return tensors_.size(); }
  uint64_t data_bytes() const;  // tensor data incl. alignment padding

  // Writes to `path` via a temporary file renamed at the end, so a failed or
  // interrupted write never leaves a half file under the final name.
  Status write(const std::string& path) const;

 private:
  struct PendingTensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    uint64_t n_bytes;
    Producer producer;
  };
  uint32_t alignment_;
  std::vector<KeyValue> kv_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace loupe::gguf
