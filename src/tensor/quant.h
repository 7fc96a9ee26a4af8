// Reference (scalar) conversions between F32 and every stored type, bit-exact with the
// GGUF block layouts. These are the correctness oracles for the fast kernels and the
// quantizer used by `loupe quantize` / `loupe synth`.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace loupe {

// Scalar half/bfloat16 conversions (IEEE round-to-nearest-even; NaN stays NaN).
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

// Whether this build can convert the type to / from F32.
bool can_dequantize(DType type);
bool can_quantize(DType type);

// Converts n elements (a multiple of the type's block size) of `src`, laid out as the
// type's blocks, to F32. Precondition: can_dequantize(type).
void dequantize_row_ref(DType type, const void* src, float* dst, int64_t n);

// Converts n F32 elements (a multiple of the block size) to the type's blocks, writing
// dtype_row_size(type, n) bytes. Precondition: can_quantize(type).
void quantize_row_ref(DType type, const float* src, void* dst, int64_t n);

}  // namespace loupe
