#include "kernels/attention.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/attention_isa.h"
#include "kernels/exp.h"
#include "kernels/matmul.h"
#include "simd/cpu.h"
#include "tensor/blocks.h"
#include "tensor/quant.h"

namespace loupe::kernels {
namespace {

// One head's key row against a query converted to the cache's vec_dot type.
struct Query {
  std::vector<float> f;       // F32 / F16 caches: the (rounded) query
  std::vector<BlockQ8_0> q8;  // Q8_0 cache
};

void prepare_query(DType type, const float* q, int64_t n, Query& out) {
  if (type == DType::kQ8_0) {
    out.q8.resize(static_cast<size_t>(n / kQk));
    quantize_row_q8_0_cpu(q, out.q8.data(), n);
    return;
  }
  out.f.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    out.f[i] = type == DType::kF16 ? f16_to_f32(fp32_to_fp16(q[i])) : q[i];
}

float key_dot(DType type, const uint8_t* k, const Query& q, int64_t n) {
  if (type == DType::kF32) {
    const float* kf = reinterpret_cast<const float*>(k);
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += kf[i] * q.f[i];
    return s;
  }
  if (type == DType::kF16) {
    const uint16_t* kh = reinterpret_cast<const uint16_t*>(k);
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += f16_to_f32(kh[i]) * q.f[i];
    return s;
  }
  const BlockQ8_0* kb = reinterpret_cast<const BlockQ8_0*>(k);
  float s = 0.0f;
  for (int64_t b = 0; b < n / kQk; ++b) {
    int32_t is = 0;
    for (int j = 0; j < kQk; ++j) is += kb[b].qs[j] * q.q8[b].qs[j];
    s += static_cast<float>(is) * (f16_to_f32(kb[b].d) * f16_to_f32(q.q8[b].d));
  }
  return s;
}

void value_row(DType type, const uint8_t* v, int64_t n, float* out) {
  if (type == DType::kF32) {
    std::memcpy(out, v, static_cast<size_t>(n) * sizeof(float));
  } else if (type == DType::kF16) {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(v);
    for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(h[i]);
  } else {
    dequantize_row_ref(DType::kQ8_0, v, out, n);
  }
}

}  // namespace

void store_kv_row(DType type, const float* x, int64_t n, uint8_t* dst) {
  if (type == DType::kF32) {
    std::memcpy(dst, x, static_cast<size_t>(n) * sizeof(float));
  } else if (type == DType::kF16) {
    uint16_t* h = reinterpret_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(x[i]);
  } else {
    assert(type == DType::kQ8_0);
    quantize_row_q8_0_cpu(x, reinterpret_cast<BlockQ8_0*>(dst), n);
  }
}

void attention_ref(ThreadPool& pool, const AttentionParams& p, const KvView& kv, const float* q,
                   const int32_t* positions, int64_t n_tokens, float* out) {
  const int64_t group = p.n_head / p.n_head_kv;
  const size_t k_head_bytes = dtype_row_size(kv.k_type, p.head_dim_k);
  const size_t v_head_bytes = dtype_row_size(kv.v_type, p.head_dim_v);
  pool.parallel_for(n_tokens * p.n_head, 1, [&](int64_t begin, int64_t end) {
    thread_local Query query;
    thread_local std::vector<float> scores;
    thread_local std::vector<float> vrow;
    for (int64_t job = begin; job < end; ++job) {
      const int64_t t = job / p.n_head;
      const int64_t h = job % p.n_head;
      const int64_t hk = h / group;
      const int64_t pos = positions[t];
      const int64_t first = p.window > 0 ? std::max<int64_t>(0, pos - p.window + 1) : 0;
      const int64_t n_keys = pos - first + 1;
      prepare_query(kv.k_type, q + (t * p.n_head + h) * p.head_dim_k, p.head_dim_k, query);
      scores.resize(static_cast<size_t>(n_keys));
      for (int64_t j = 0; j < n_keys; ++j) {
        const uint8_t* krow =
            kv.k + static_cast<size_t>(first + j) * kv.k_stride + hk * k_head_bytes;
        float s = key_dot(kv.k_type, krow, query, p.head_dim_k);
        if (p.softcap > 0.0f) s = std::tanh(s * (1.0f / p.softcap)) * p.softcap;
        scores[j] = s * p.scale;
      }
      // Softmax with an optional sink: it joins the max and the normalization only.
      float max = -INFINITY;
      for (float s : scores) max = std::max(max, s);
      if (p.sinks != nullptr) max = std::max(max, p.sinks[h]);
      double sum = 0.0;
      for (float& s : scores) {
        s = exp_det(s - max);
        sum += static_cast<double>(s);
      }
      if (p.sinks != nullptr) sum += static_cast<double>(exp_det(p.sinks[h] - max));
      const float inv = static_cast<float>(1.0 / sum);
      for (float& s : scores) {
        s *= inv;
        if (kv.v_type == DType::kF16) s = f16_to_f32(fp32_to_fp16(s));
      }
      float* o = out + (t * p.n_head + h) * p.head_dim_v;
      std::fill(o, o + p.head_dim_v, 0.0f);
      vrow.resize(static_cast<size_t>(p.head_dim_v));
      for (int64_t j = 0; j < n_keys; ++j) {
        value_row(kv.v_type,
                  kv.v + static_cast<size_t>(first + j) * kv.v_stride + hk * v_head_bytes,
                  p.head_dim_v, vrow.data());
        const float pj = scores[j];
        for (int64_t d = 0; d < p.head_dim_v; ++d) o[d] += pj * vrow[d];
      }
    }
  });
}

namespace {

isa::AttentionKernel fast_attention(const KvView& kv) {
  const auto covered = [](DType t) { return t == DType::kF32 || t == DType::kF16; };
  if (!covered(kv.k_type) || !covered(kv.v_type)) return {};
  switch (simd::active_isa()) {
    case simd::Isa::kAvx512:
      return isa::avx512_attention();
    case simd::Isa::kAvx2:
      return isa::avx2_attention();
    default:
      return {};
  }
}

}  // namespace

void attention(ThreadPool& pool, const AttentionParams& p, const KvView& kv, const float* q,
               const int32_t* positions, int64_t n_tokens, float* out) {
  const isa::AttentionKernel k = fast_attention(kv);
  if (!k) {
    attention_ref(pool, p, kv, q, positions, n_tokens, out);
    return;
  }
  // Jobs of (a block of tokens, one KV head): the block's queries on the KV head's group
  // of query heads fill the kernel's register tiles, so each converted key tile serves them
  // all; fewer queries per job on long contexts bound the per-thread score buffer. The
  // split changes no result (attention_isa.h).
  const int64_t group = p.n_head / p.n_head_kv;
  int64_t max_pos = 0;
  for (int64_t t = 0; t < n_tokens; ++t) max_pos = std::max<int64_t>(max_pos, positions[t]);
  int64_t queries = k.job_queries;
  while (queries > group && queries * (max_pos + 1) > (int64_t{1} << 20)) queries /= 2;
  const int64_t block = std::max<int64_t>(1, queries / group);
  const int64_t n_blocks = (n_tokens + block - 1) / block;
  pool.parallel_for(n_blocks * p.n_head_kv, 1, [&](int64_t begin, int64_t end) {
    for (int64_t job = begin; job < end; ++job) {
      const int64_t b = job / p.n_head_kv, hk = job % p.n_head_kv;
      k.job(p, kv, q, positions, b * block, std::min(n_tokens, (b + 1) * block), hk, out);
    }
  });
}

}  // namespace loupe::kernels
