// The per-ISA side of attention (internal to kernels) for F32 / F16 caches. attention()
// splits the work into jobs of (a few tokens × the query heads of one KV head) and hands
// each to the ISA's job function; caches or ISAs it does not cover run the scalar twin,
// attention_ref().
//
// Queries sit in vector lanes, and each runs exactly the twin's operations in the twin's
// order (attention_x86.inc): the results are the twin's bits, so prefill equals
// token-by-token decode and any split of a batch gives the same bits.
//
// Memory: a job holds its queries' scores for all keys up to its last position,
// job queries × n_keys floats per thread (64 × 4096 keys: 1 MiB); the driver shrinks jobs
// on long contexts to keep that near 4 MiB.
#pragma once

#include <cstdint>

#include "kernels/attention.h"

namespace loupe::kernels::isa {

constexpr int64_t kAttentionKeyTile = 32;

struct AttentionKernel {
  // Queries per job that fill the kernel's register tile (the driver groups tokens so
  // that tokens × group ≈ this).
  int64_t job_queries = 0;
  // out rows of tokens [t0, t1) and the query heads of KV head hk. Needs F32 / F16 K and V.
  void (*job)(const AttentionParams& p, const KvView& kv, const float* q,
              const int32_t* positions, int64_t t0, int64_t t1, int64_t hk,
              float* out) = nullptr;
  explicit operator bool() const { return job != nullptr; }
};

AttentionKernel avx2_attention();
AttentionKernel avx512_attention();

}  // namespace loupe::kernels::isa
