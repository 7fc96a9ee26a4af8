// GGUF reader: everything is validated before use; a failure names the file, the byte
// offset, the field and what is wrong. Split models (NAME-00001-of-0000N.gguf) open from
// their first part as one model.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/mapped_file.h"
#include "base/status.h"
#include "gguf/value.h"
#include "tensor/dtype.h"

namespace loupe::gguf {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
inline constexpr uint32_t kDefaultAlignment = 32;
inline constexpr int kMaxDims = 4;

struct TensorInfo {
  std::string name;
  DType type = DType::kF32;
  std::vector<int64_t> ne;  // ggml order: ne[0] is the contiguous dimension
  uint64_t offset = 0;      // from the start of its file's data section
  uint64_t n_bytes = 0;
  int split = 0;            // which file of a split model holds it
  const uint8_t* data = nullptr;  // points into the mapped file

  int64_t n_elements() const;
  std::span<const uint8_t> bytes() const { return {data, static_cast<size_t>(n_bytes)}; }
};

struct ReadLimits {
  // Hard caps against hostile headers; real models are far below them.
  uint64_t max_string_bytes = 1ull << 30;
  uint64_t max_array_items = 1ull << 28;
  int max_array_depth = 8;
  uint64_t max_tensors = 1ull << 20;
  uint64_t max_kv = 1ull << 20;
};

class File {
 public:
  // Opens and validates a GGUF file (and, for split models, every part).
  static Expected<File> open(const std::string& path, const ReadLimits& limits = {});
  // Validates a GGUF image held in memory (fuzzing, tests). `name` is used in messages.
  // Tensor data pointers point into `bytes`, which must outlive the File.
  static Expected<File> parse(std::span<const uint8_t> bytes, const std::string& name,
                              const ReadLimits& limits = {});

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // of the first part
  uint64_t file_size() const { return total_size_; }      // all parts together
  int n_splits() const { return static_cast<int>(parts_.size() > 0 ? parts_.size() : 1); }
  const std::string& path() const { return path_; }
  std::vector<std::string> part_paths() const;

  const std::vector<KeyValue>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;

  // Typed lookups that explain a missing or mistyped key.
  Expected<std::string> get_string(std::string_view key) const;
  Expected<int64_t> get_int(std::string_view key) const;
  Expected<double> get_float(std::string_view key) const;
  std::string get_string_or(std::string_view key, std::string fallback) const;
  int64_t get_int_or(std::string_view key, int64_t fallback) const;
  double get_float_or(std::string_view key, double fallback) const;

  // `general.architecture`, or "" when absent.
  std::string architecture() const { return get_string_or("general.architecture", ""); }

 private:
  struct Part {
    std::shared_ptr<MappedFile> map;
    std::string path;
  };

  std::string path_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  uint64_t total_size_ = 0;
  std::vector<KeyValue> kv_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::unordered_map<std::string, size_t> tensor_index_;
  std::vector<Part> parts_;

  friend class Parser;
};

}  // namespace loupe::gguf
