// The per-ISA side of matmul (internal to kernels). An ISA file offers, per weight type it
// accelerates, how one token row of activations is converted and how a range of output
// rows is computed from converted activations. matmul() picks the table once per call from
// simd::active_isa(); types an ISA does not cover run the scalar twin in matmul.cpp.
//
// Every output y[t, r] is computed by the same sequence of operations whatever the number
// of tokens, the token's place in the batch or the rows' split across threads: prefill and
// token-by-token decode agree bit for bit, for any thread count.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/matmul.h"

namespace loupe::kernels::isa {

// Activations of one matmul after conversion: n_tokens rows of row_bytes each.
struct ActView {
  const uint8_t* data = nullptr;  // [n_tokens][row_bytes]
  size_t row_bytes = 0;
  int64_t n_tokens = 0;
};

struct WeightKernel {
  // Bytes of one converted token row of n_in values.
  size_t (*act_row_bytes)(int64_t n_in) = nullptr;
  // Converts one token row x [n_in] into `out` [act_row_bytes(n_in)].
  void (*convert)(const float* x, int64_t n_in, uint8_t* out) = nullptr;
  // y[t * y_stride + r] for r in [r0, r1) and every token of `a`.
  void (*rows)(const Matrix& w, const ActView& a, int64_t r0, int64_t r1, float* y,
               int64_t y_stride) = nullptr;
  // Rows per register panel: the driver splits rows at multiples of it (any split gives
  // the same bits; this one keeps panels full).
  int64_t row_align = 1;
  // Optional packed layout (same byte count as the stored rows; rows() reads w.packed when
  // set): whether w can be packed, and the packing of all its rows into `out`.
  bool (*can_pack)(const Matrix& w) = nullptr;
  void (*pack)(const Matrix& w, uint8_t* out) = nullptr;
  explicit operator bool() const { return rows != nullptr; }
};

// Kernels for `type` on each ISA; an empty WeightKernel when that ISA does not cover it.
WeightKernel avx2_kernel(DType type);
WeightKernel avx512_kernel(DType type);
// AVX-512 kernels kept in their own files (matmul_avx512_float.cpp: F32/F16/BF16 register
// tiles; matmul_avx512_kquant.cpp: K-quant panels); avx512_kernel asks them first.
WeightKernel avx512_float_kernel(DType type);
WeightKernel avx512_kquant_kernel(DType type);

}  // namespace loupe::kernels::isa
