// The vector attention path against its scalar twin (attention_ref) on every ISA the
// machine offers: the same bits (the twin's operations, queries in lanes), whether a query
// is evaluated in a prefill batch, alone (token-by-token decode) or in another split, with
// NaN bytes in the cells past the last position.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/attention.h"
#include "simd/cpu.h"
#include "tensor/dtype.h"

namespace loupe::kernels {
namespace {

struct IsaGuard {
  simd::Isa saved = simd::active_isa();
  ~IsaGuard() { simd::set_isa(saved); }
};

std::vector<simd::Isa> supported_isas() {
  std::vector<simd::Isa> v;
  for (int i = 0; i < static_cast<int>(simd::Isa::kCount); ++i)
    if (simd::isa_supported(static_cast<simd::Isa>(i))) v.push_back(static_cast<simd::Isa>(i));
  return v;
}

struct Case {
  int64_t n_head, n_head_kv, head_dim_k, head_dim_v;
  DType k_type, v_type;
  int64_t window = 0;
  float softcap = 0.0f;
  bool sinks = false;
  int64_t p0 = 0;  // position of the batch's first token (earlier cells already cached)
  int64_t n_tokens = 1;
};

std::string describe(const Case& c, simd::Isa isa) {
  return std::string(simd::isa_name(isa)) + " heads " + std::to_string(c.n_head) + "/" +
         std::to_string(c.n_head_kv) + " dims " + std::to_string(c.head_dim_k) + "/" +
         std::to_string(c.head_dim_v) + " " + std::string(dtype_name(c.k_type)) + "/" +
         std::string(dtype_name(c.v_type)) + " window " + std::to_string(c.window) +
         " softcap " + std::to_string(c.softcap) + " sinks " + std::to_string(c.sinks) +
         " p0 " + std::to_string(c.p0) + " tokens " + std::to_string(c.n_tokens);
}

void run_case(const Case& c, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t n_cells = c.p0 + c.n_tokens + 40;  // cells past the last position: garbage
  const int64_t nk = c.n_head_kv * c.head_dim_k, nv = c.n_head_kv * c.head_dim_v;
  const size_t k_stride = dtype_row_size(c.k_type, nk) + 6;  // odd strides: unaligned rows
  const size_t v_stride = dtype_row_size(c.v_type, nv) + 2;
  std::vector<uint8_t> kbuf(k_stride * n_cells + 3, 0xff), vbuf(v_stride * n_cells + 3, 0xff);
  uint8_t* k = kbuf.data() + 1;
  uint8_t* v = vbuf.data() + 3;
  std::vector<float> row(static_cast<size_t>(std::max(nk, nv)));
  float v_max = 0.0f;
  for (int64_t cell = 0; cell < c.p0 + c.n_tokens; ++cell) {
    for (int64_t i = 0; i < nk; ++i) row[i] = 2.0f * dist(rng);
    store_kv_row(c.k_type, row.data(), nk, k + cell * k_stride);
    for (int64_t i = 0; i < nv; ++i) {
      row[i] = dist(rng);
      v_max = std::max(v_max, std::fabs(row[i]));
    }
    store_kv_row(c.v_type, row.data(), nv, v + cell * v_stride);
  }
  // 0xff bytes past the last position: NaN in F16 and F32 alike.
  const KvView kv{c.k_type, c.v_type, k, v, k_stride, v_stride};
  AttentionParams ap;
  ap.n_head = c.n_head;
  ap.n_head_kv = c.n_head_kv;
  ap.head_dim_k = c.head_dim_k;
  ap.head_dim_v = c.head_dim_v;
  ap.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim_k));
  ap.softcap = c.softcap;
  ap.window = c.window;
  std::vector<float> sinks(static_cast<size_t>(c.n_head));
  for (float& s : sinks) s = dist(rng);
  if (c.sinks) ap.sinks = sinks.data();
  std::vector<float> q(static_cast<size_t>(c.n_tokens * c.n_head * c.head_dim_k));
  for (float& e : q) e = dist(rng);
  std::vector<int32_t> pos(static_cast<size_t>(c.n_tokens));
  for (int64_t t = 0; t < c.n_tokens; ++t) pos[t] = static_cast<int32_t>(c.p0 + t);
  const int64_t out_row = c.n_head * c.head_dim_v;
  const size_t n_out = static_cast<size_t>(c.n_tokens * out_row);

  ThreadPool pool(3);
  std::vector<float> ref(n_out);
  attention_ref(pool, ap, kv, q.data(), pos.data(), c.n_tokens, ref.data());
  // Sanity of the twin itself: outputs are convex combinations of the values.
  for (float o : ref) ASSERT_LE(std::fabs(o), v_max * (1 + 1e-3));
  for (simd::Isa isa : supported_isas()) {
    ASSERT_TRUE(simd::set_isa(isa));
    const std::string what = describe(c, isa);
    std::vector<float> batch(n_out);
    attention(pool, ap, kv, q.data(), pos.data(), c.n_tokens, batch.data());
    for (size_t i = 0; i < n_out; ++i) ASSERT_EQ(batch[i], ref[i]) << what << " output " << i;
    // Token by token (decode), and the batch split in two at an odd place.
    std::vector<float> alone(n_out), split(n_out);
    for (int64_t t = 0; t < c.n_tokens; ++t)
      attention(pool, ap, kv, q.data() + t * c.n_head * c.head_dim_k, pos.data() + t, 1,
                alone.data() + t * out_row);
    const int64_t cut = c.n_tokens / 3;
    attention(pool, ap, kv, q.data(), pos.data(), cut, split.data());
    attention(pool, ap, kv, q.data() + cut * c.n_head * c.head_dim_k, pos.data() + cut,
              c.n_tokens - cut, split.data() + cut * out_row);
    for (size_t i = 0; i < n_out; ++i) {
      ASSERT_EQ(alone[i], batch[i]) << what << " output " << i << " (decode vs prefill)";
      ASSERT_EQ(split[i], batch[i]) << what << " output " << i << " (split batch)";
    }
  }
}

TEST(Attention, EveryIsaMatchesTheTwinAndBatchesAgree) {
  IsaGuard guard;
  std::mt19937 rng(5);
  const DType kF16 = DType::kF16, kF32 = DType::kF32;
  std::vector<Case> cases = {
      // TinyLlama's shape (GQA 8, dim 64) over the F16 cache, prefill and continuation.
      {8, 1, 64, 64, kF16, kF16, 0, 0.0f, false, 0, 70},
      {16, 2, 64, 64, kF16, kF16, 0, 0.0f, false, 37, 9},
      {32, 4, 64, 64, kF16, kF16, 0, 0.0f, false, 0, 1},
      // No GQA, odd and wide head dims, differing K / V dims, F32 and mixed caches.
      {3, 3, 40, 40, kF32, kF32, 0, 0.0f, false, 5, 33},
      {2, 1, 3, 5, kF16, kF32, 0, 0.0f, false, 0, 17},
      {4, 2, 128, 96, kF32, kF16, 0, 0.0f, false, 63, 20},
      {6, 2, 80, 80, kF16, kF16, 0, 0.0f, false, 31, 2},
      // Sliding window, softcap (Gemma 2) and sinks (gpt-oss).
      {8, 2, 64, 64, kF16, kF16, 5, 0.0f, false, 0, 40},
      {8, 2, 64, 64, kF16, kF16, 33, 0.0f, true, 50, 30},
      {4, 2, 32, 32, kF32, kF16, 0, 30.0f, false, 3, 12},
      {4, 4, 16, 16, kF16, kF32, 7, 20.0f, true, 0, 45},
  };
  for (const Case& c : cases) run_case(c, rng);
}

TEST(Attention, Q8_0CacheRunsTheTwinOnEveryIsa) {
  IsaGuard guard;
  std::mt19937 rng(9);
  run_case({8, 2, 64, 64, DType::kQ8_0, DType::kQ8_0, 0, 0.0f, false, 4, 11}, rng);
  run_case({8, 2, 64, 64, DType::kQ8_0, DType::kF16, 0, 0.0f, false, 0, 6}, rng);
}

}  // namespace
}  // namespace loupe::kernels
