// Reference (scalar) conversions between F32 and every stored type, bit-exact with the
// GGUF block layouts. These are the correctness oracles for the fast kernels and the
// quantizer used by `loupe quantize` / `loupe synth`.
#pragma once

#include <cstdint>

#include "tensor/blocks.h"
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
// type's blocks, to F32. Precondition: can_dequantize(type); `src` aligned for the block
// struct (at most 4 bytes, as GGUF's tensor data always is).
void dequantize_row_ref(DType type, const void* src, float* dst, int64_t n);

// Converts n F32 elements (a multiple of the block size) to the type's blocks, writing
// dtype_row_size(type, n) bytes. Precondition: can_quantize(type).
void quantize_row_ref(DType type, const float* src, void* dst, int64_t n);

// Per-type reference kernels behind the generic entry points. `n` counts elements and is a
// multiple of the block size; x is [n] F32, y is [n / block size] blocks. Quantizers are
// llama.cpp's reference algorithms without an importance matrix (what `llama-quantize`
// runs without --imatrix), reproduced bit for bit; dequantizers match ggml's
// dequantize_row_* exactly.
void quantize_row_q4_0_ref(const float* x, BlockQ4_0* y, int64_t n);
void quantize_row_q4_1_ref(const float* x, BlockQ4_1* y, int64_t n);
void quantize_row_q5_0_ref(const float* x, BlockQ5_0* y, int64_t n);
void quantize_row_q5_1_ref(const float* x, BlockQ5_1* y, int64_t n);
void quantize_row_q8_0_ref(const float* x, BlockQ8_0* y, int64_t n);
void quantize_row_q8_1_ref(const float* x, BlockQ8_1* y, int64_t n);
void quantize_row_q2_k_ref(const float* x, BlockQ2_K* y, int64_t n);
void quantize_row_q3_k_ref(const float* x, BlockQ3_K* y, int64_t n);
void quantize_row_q4_k_ref(const float* x, BlockQ4_K* y, int64_t n);
void quantize_row_q5_k_ref(const float* x, BlockQ5_K* y, int64_t n);
void quantize_row_q6_k_ref(const float* x, BlockQ6_K* y, int64_t n);
void quantize_row_q8_k_ref(const float* x, BlockQ8_K* y, int64_t n);
// IQ4_NL/IQ4_XS run the scale search of quantize_iq4_nl/_xs (ntry 7, as llama-quantize),
// not ggml's quantize_row_iq4_nl_ref (ntry -1).
void quantize_row_iq4_nl_ref(const float* x, BlockIq4Nl* y, int64_t n);
void quantize_row_iq4_xs_ref(const float* x, BlockIq4Xs* y, int64_t n);
void quantize_row_mxfp4_ref(const float* x, BlockMxfp4* y, int64_t n);

void dequantize_row_q4_0_ref(const BlockQ4_0* x, float* y, int64_t n);
void dequantize_row_q4_1_ref(const BlockQ4_1* x, float* y, int64_t n);
void dequantize_row_q5_0_ref(const BlockQ5_0* x, float* y, int64_t n);
void dequantize_row_q5_1_ref(const BlockQ5_1* x, float* y, int64_t n);
void dequantize_row_q8_0_ref(const BlockQ8_0* x, float* y, int64_t n);
void dequantize_row_q8_1_ref(const BlockQ8_1* x, float* y, int64_t n);
void dequantize_row_q2_k_ref(const BlockQ2_K* x, float* y, int64_t n);
void dequantize_row_q3_k_ref(const BlockQ3_K* x, float* y, int64_t n);
void dequantize_row_q4_k_ref(const BlockQ4_K* x, float* y, int64_t n);
void dequantize_row_q5_k_ref(const BlockQ5_K* x, float* y, int64_t n);
void dequantize_row_q6_k_ref(const BlockQ6_K* x, float* y, int64_t n);
void dequantize_row_q8_k_ref(const BlockQ8_K* x, float* y, int64_t n);
void dequantize_row_iq4_nl_ref(const BlockIq4Nl* x, float* y, int64_t n);
void dequantize_row_iq4_xs_ref(const BlockIq4Xs* x, float* y, int64_t n);
void dequantize_row_mxfp4_ref(const BlockMxfp4* x, float* y, int64_t n);

}  // namespace loupe
