// Causal multi-head attention of a batch of queries against a KV cache. The scalar twin,
// attention_ref, computes it as llama.cpp's non-flash path: kq = K·q (q converted to the
// cache type's vec_dot type), optional softcap, softmax(kq·scale + mask) with optional sink
// logits, then V·p (p rounded to F16 for an F16 V cache). For F32 / F16 caches on AVX2 /
// AVX-512, attention() runs the same operations with 8 or 16 queries per vector and key /
// value rows converted once per tile for a whole group of query heads
// (src/kernels/attention_isa.h): the twin's bits, faster.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/thread_pool.h"
#include "tensor/dtype.h"

namespace loupe::kernels {

// The cache of one layer: cell j holds position j of the sequence.
struct KvView {
  DType k_type = DType::kF32;  // F32, F16 or Q8_0
  DType v_type = DType::kF32;
  const uint8_t* k = nullptr;  // [n_cells][k_stride bytes]: n_head_kv * head_dim_k values
  const uint8_t* v = nullptr;  // [n_cells][v_stride bytes]: n_head_kv * head_dim_v values
  size_t k_stride = 0;
  size_t v_stride = 0;
};

struct AttentionParams {
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim_k = 0;
  int64_t head_dim_v = 0;
  float scale = 1.0f;    // multiplies kq inside the softmax
  float softcap = 0.0f;  // kq = cap·tanh(kq/cap) before scaling, when > 0
  int64_t window = 0;    // sliding window: key k is visible from p iff p - k < window (0: all)
  const float* sinks = nullptr;  // [n_head] sink logits (gpt-oss), or null
};

// q: [n_tokens, n_head, head_dim_k]; positions[t] is query t's position, and every cell
// 0..positions[t] of the cache must hold its keys already. out: [n_tokens, n_head*head_dim_v].
void attention(ThreadPool& pool, const AttentionParams& p, const KvView& kv, const float* q,
               const int32_t* positions, int64_t n_tokens, float* out);
// The scalar twin (and the path for Q8_0 caches): one softmax over all of a query's keys.
void attention_ref(ThreadPool& pool, const AttentionParams& p, const KvView& kv, const float* q,
                   const int32_t* positions, int64_t n_tokens, float* out);

// Stores n values into a cache row slot of the given type (F32, F16 or Q8_0).
void store_kv_row(DType type, const float* x, int64_t n, uint8_t* dst);

}  // namespace loupe::kernels
