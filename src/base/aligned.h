// Aligned heap buffers for SIMD-friendly data (64 bytes: one cache line, one AVX-512 vector).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace loupe {

inline constexpr size_t kDefaultAlignment = 64;

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

template <typename T>
using AlignedPtr = std::unique_ptr<T[], AlignedFree>;

// Allocates `n` uninitialized elements of a trivial type; throws std::bad_alloc on failure.
template <typename T>
AlignedPtr<T> aligned_alloc_array(size_t n, size_t alignment = kDefaultAlignment) {
  size_t bytes = n * sizeof(T);
  bytes = (bytes + alignment - 1) / alignment * alignment;
  if (bytes == 0) bytes = alignment;
  void* p = std::aligned_alloc(alignment, bytes);
  if (p == nullptr) throw std::bad_alloc();
  return AlignedPtr<T>(static_cast<T*>(p));
}

}  // namespace loupe
