// Matrix products of stored weights (any supported GGUF type, used in place) with F32
// activations, computed the way llama.cpp's CPU backend does: the activations are first
// converted to the weight type's "vec_dot type" (F16 / BF16 rounding, or Q8_0 / Q8_1 /
// Q8_K blocks), products inside a block are integer-exact, blocks are summed in F32.
// Work is split by output rows only, never inside a dot product, so results are
// bit-identical for any thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "base/thread_pool.h"
#include "tensor/blocks.h"
#include "tensor/dtype.h"

namespace loupe::kernels {

// A weight matrix as GGUF stores it: ne = [n_in, n_out], one row of n_in elements per
// output, rows `row_stride` bytes apart.
struct Matrix {
  DType type = DType::kF32;
  const uint8_t* data = nullptr;  // [n_out][row_stride]
  int64_t n_in = 0;
  int64_t n_out = 0;
  size_t row_stride = 0;
  // The same rows repacked for the active ISA's kernel (set by matmul() from PackedWeights;
  // callers leave it null).
  const uint8_t* packed = nullptr;
};

// Weights repacked once, at load, into the layout the active ISA's kernel reads without
// rearranging (AVX-512 Q4_0 / Q8_0: panels of 16 rows, interleaved block by block, exactly as
// many bytes as the file's blocks). A matmul whose weight lies in a registered range reads the
// packed copy; results are bit-identical to the unpacked path. Ranges stay registered while
// the object lives; the file's pages are not needed afterwards (see drop_source()).
class PackedWeights {
 public:
  PackedWeights() = default;
  ~PackedWeights();
  PackedWeights(const PackedWeights&) = delete;
  PackedWeights& operator=(const PackedWeights&) = delete;

  // Packs w (all n_out rows) when the active ISA has a packed layout for its type and shape;
  // returns the bytes packed (0: left as it is). Safe to call from several threads at once.
  size_t add(const Matrix& w);
  size_t bytes() const { return bytes_; }
  // Whether LOUPE_NO_REPACK=1 turned packing off.
  static bool disabled();

 private:
  struct Block;
  std::mutex mutex_;  // guards blocks_ and bytes_
  std::vector<std::pair<const uint8_t*, Block*>> blocks_;
  size_t bytes_ = 0;
};

// The type activations are converted to before a dot product with `weight` rows
// (ggml-cpu's type_traits_cpu[weight].vec_dot_type).
DType vec_dot_type(DType weight);
// Whether `weight` can be used directly as a matmul weight.
bool matmul_supports(DType weight);

// y[t, r] = W[r, :] · x[t, :].  x: [n_tokens, n_in], y: [n_tokens, n_out] (row stride
// y_stride floats, >= n_out; 0 means n_out). Precondition: matmul_supports(w.type) and
// n_in a multiple of the type's block size.
void matmul(ThreadPool& pool, const Matrix& w, const float* x, int64_t n_tokens, float* y,
            int64_t y_stride = 0);

// Scalar reference of one product: converts `x` [n_in] as above and dots it with row `r`,
// one block at a time straight from the stored bytes. The oracle for matmul.
float matvec_row_ref(const Matrix& w, int64_t r, const float* x);

// ggml-cpu's x86 quantize_row_q8_0 (activations and Q8_0 KV cache writes): d = amax/127,
// codes round(x·127/amax) half to even.
void quantize_row_q8_0_cpu(const float* x, BlockQ8_0* y, int64_t n);

// F16 <-> F32 through a table (ggml's GGML_CPU_FP16_TO_FP32 lookup).
float f16_to_f32(uint16_t h);

}  // namespace loupe::kernels
