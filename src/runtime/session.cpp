#include "runtime/session.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/recurrent.h"

namespace loupe::runtime {

using model::Activation;
using model::ArchSpec;
using model::AttnScale;
using model::ExpertGating;
using model::Hparams;
using model::LayerKind;
using model::LayerWeights;
using model::Weight;

// The KV cache: for every attention layer that owns one, n_ctx cells of K and V rows per
// sequence (cell s * n_ctx + j = position j of sequence s); layers that share K/V point at
// their source layer.
struct Session::Impl {
  struct LayerCache {
    std::vector<uint8_t> k;  // [n_seq][n_ctx][n_head_kv * head_dim_k] in cache_type_k
    std::vector<uint8_t> v;  // [n_seq][n_ctx][n_head_kv * head_dim_v] in cache_type_v
    size_t k_stride = 0;
    size_t v_stride = 0;
    // Recurrent (Gated DeltaNet) layers instead: the conv window and the delta state.
    std::vector<float> conv;  // [n_seq][n_kernel - 1][n_channels]: latest inputs, oldest first
    std::vector<float> ssm;   // [n_seq][n_v][S][S]
    size_t conv_floats = 0;   // per sequence
    size_t ssm_floats = 0;
  };
  std::vector<LayerCache> layers;  // [n_layer]
};

namespace {

bool is_cache_type(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kQ8_0;
}

int64_t head_dim_k(const Hparams& hp, int64_t il) {
  return hp.layer_kind[il] == LayerKind::kSlidingAttention ? hp.head_dim_k_swa : hp.head_dim_k;
}
int64_t head_dim_v(const Hparams& hp, int64_t il) {
  return hp.layer_kind[il] == LayerKind::kSlidingAttention ? hp.head_dim_v_swa : hp.head_dim_v;
}

void add_bias(const Weight& b, float* y, int64_t n_rows, int64_t n_cols, int64_t stride) {
  if (!b) return;
  const float* bias = b.f32();
  for (int64_t r = 0; r < n_rows; ++r)
    for (int64_t c = 0; c < n_cols; ++c) y[r * stride + c] += bias[c];
}

// y = W·x (+ bias) for every row of x.
void linear(ThreadPool& pool, const Weight& w, const Weight& b, const float* x, int64_t n_rows,
            float* y) {
  const kernels::Matrix m = w.matrix();
  kernels::matmul(pool, m, x, n_rows, y);
  add_bias(b, y, n_rows, m.n_out, m.n_out);
}

void norm_rows(const Weight& w, float eps, const float* x, int64_t n_rows, int64_t n, float* y) {
  const float* wf = w ? w.f32() : nullptr;
  for (int64_t r = 0; r < n_rows; ++r) kernels::rms_norm(x + r * n, wf, eps, n, y + r * n);
}

void activate(Activation act, const float* g, const float* u, int64_t n, float* y) {
  switch (act) {
    case Activation::kSilu:
      kernels::swiglu(g, u, n, y);
      break;
    case Activation::kGelu:
      kernels::geglu(g, u, n, y);
      break;
    case Activation::kSwigluOai:
      for (int64_t i = 0; i < n; ++i) {
        // gpt-oss (ggml_swiglu_oai, alpha 1.702, limit 7).
        const float xg = std::min(g[i], 7.0f);
        const float xu = std::max(std::min(u[i], 7.0f), -7.0f);
        y[i] = (xg / (1.0f + std::exp(-1.702f * xg))) * (xu + 1.0f);
      }
      break;
    case Activation::kCount:
      break;
  }
}

}  // namespace

Session::Session(const model::Model& model, const RunParams& params)
    : model_(model), params_(params) {}
Session::~Session() = default;

Expected<std::unique_ptr<Session>> Session::create(const model::Model& model,
                                                   const RunParams& params) {
  const Hparams& hp = model.hp;
  if (!is_cache_type(params.cache_type_k) || !is_cache_type(params.cache_type_v))
    return make_error(ErrorCode::kInvalidArgument,
                      "KV cache type {}/{} is not supported: use f16 (default), f32 or q8_0",
                      dtype_name(params.cache_type_k), dtype_name(params.cache_type_v));
  if (params.n_seq < 1)
    return make_error(ErrorCode::kInvalidArgument, "n_seq is {}: a session needs at least 1",
                      params.n_seq);
  std::unique_ptr<Session> s(new Session(model, params));
  s->n_past_.assign(static_cast<size_t>(params.n_seq), 0);
  const size_t n_seq = static_cast<size_t>(params.n_seq);
  s->n_ctx_ = params.n_ctx > 0
                  ? params.n_ctx
                  : std::min<int64_t>(hp.n_ctx_train > 0 ? hp.n_ctx_train : 4096, 4096);
  if (hp.n_ctx_train > 0 && s->n_ctx_ > hp.n_ctx_train)
    return make_error(ErrorCode::kOutOfRange, "context {} exceeds the model's training context {}",
                      s->n_ctx_, hp.n_ctx_train);
  s->pool_ = std::make_unique<ThreadPool>(params.n_threads > 0 ? params.n_threads
                                                               : ThreadPool::default_threads());
  s->impl_ = std::make_unique<Impl>();
  s->impl_->layers.resize(static_cast<size_t>(hp.n_layer));
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    if (hp.layer_kind[il] == LayerKind::kRecurrent) {
      Impl::LayerCache& c = s->impl_->layers[il];
      const int64_t channels = hp.ssm_inner_size + 2 * hp.ssm_group_count * hp.ssm_state_size;
      c.conv_floats = static_cast<size_t>((hp.ssm_conv_kernel - 1) * channels);
      c.ssm_floats =
          static_cast<size_t>(hp.ssm_time_step_rank * hp.ssm_state_size * hp.ssm_state_size);
      c.conv.assign(n_seq * c.conv_floats, 0.0f);
      c.ssm.assign(n_seq * c.ssm_floats, 0.0f);
      s->has_recurrent_ = true;
      continue;
    }
    if (hp.kv_shared[il]) continue;
    const int64_t dk = head_dim_k(hp, il);
    const int64_t dv = head_dim_v(hp, il);
    for (auto [t, d] : {std::pair{params.cache_type_k, dk}, std::pair{params.cache_type_v, dv}})
      if (d % dtype_traits(t).block_size != 0)
        return make_error(
            ErrorCode::kInvalidArgument,
            "KV cache type {} needs a head dim that is a multiple of {}, this model has {}",
            dtype_name(t), dtype_traits(t).block_size, d);
    Impl::LayerCache& c = s->impl_->layers[il];
    c.k_stride = static_cast<size_t>(hp.n_head_kv[il]) * dtype_row_size(params.cache_type_k, dk);
    c.v_stride = static_cast<size_t>(hp.n_head_kv[il]) * dtype_row_size(params.cache_type_v, dv);
    c.k.resize(n_seq * c.k_stride * static_cast<size_t>(s->n_ctx_));
    c.v.resize(n_seq * c.v_stride * static_cast<size_t>(s->n_ctx_));
  }
  return s;
}

// Gated DeltaNet mixer over the batch, token by token through the recurrent state of each
// token's sequence (token_seq [n_tokens]): projections (one matmul for the whole batch),
// causal conv + SiLU, L2-normed q/k, the delta rule per value head, gated RMS norm, output
// projection. `io`: [n_tokens, n_embd], normed input in, mixer output out.
void Session::delta_net_mixer(int64_t il, float* io, std::span<const int32_t> token_seq) {
  const int64_t n_tokens = static_cast<int64_t>(token_seq.size());
  const Hparams& hp = model_.hp;
  const LayerWeights& l = model_.layers[il];
  ThreadPool& pool = *pool_;
  Impl::LayerCache& c = impl_->layers[il];
  const float eps = static_cast<float>(hp.norm_eps);
  const int64_t n_k = hp.ssm_group_count, n_v = hp.ssm_time_step_rank, S = hp.ssm_state_size;
  const int64_t n_kernel = hp.ssm_conv_kernel, d_inner = hp.ssm_inner_size;
  const int64_t channels = d_inner + 2 * n_k * S;
  std::vector<float> u(static_cast<size_t>(n_tokens * channels)),
      z(static_cast<size_t>(n_tokens * d_inner));
  std::vector<float> beta(static_cast<size_t>(n_tokens * n_v)), g(beta.size());
  linear(pool, l.ssm_in, {}, io, n_tokens, u.data());
  linear(pool, l.ssm_z, {}, io, n_tokens, z.data());
  linear(pool, l.ssm_beta, {}, io, n_tokens, beta.data());
  linear(pool, l.ssm_alpha, {}, io, n_tokens, g.data());
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t h = 0; h < n_v; ++h) {
      float& b = beta[t * n_v + h];
      b = kernels::sigmoid(b);
      float& a = g[t * n_v + h];
      a = kernels::softplus(a + l.ssm_dt_bias.f32()[h]) * l.ssm_a.f32()[h];
    }
  std::vector<float> window(static_cast<size_t>(n_kernel * channels)),
      conv(static_cast<size_t>(channels));
  std::vector<float> o(static_cast<size_t>(n_tokens * d_inner));
  const size_t state_floats = c.conv_floats;
  for (int64_t t = 0; t < n_tokens; ++t) {
    const size_t seq = static_cast<size_t>(token_seq[t]);
    float* conv_state = c.conv.data() + seq * c.conv_floats;
    float* ssm_state = c.ssm.data() + seq * c.ssm_floats;
    std::copy_n(conv_state, state_floats, window.begin());
    std::copy_n(u.data() + t * channels, channels,
                window.begin() + static_cast<std::ptrdiff_t>(state_floats));
    std::copy(window.begin() + channels, window.end(), conv_state);
    kernels::causal_conv1d(window.data(), l.ssm_conv1d.f32(), n_kernel, channels, conv.data());
    for (float& e : conv) e = kernels::silu(e);
    float* qs = conv.data();
    float* ks = conv.data() + n_k * S;
    const float* vs = conv.data() + 2 * n_k * S;
    for (int64_t h = 0; h < n_k; ++h) {
      kernels::l2_norm(qs + h * S, eps, S, qs + h * S);
      kernels::l2_norm(ks + h * S, eps, S, ks + h * S);
    }
    // Value head h reads q/k head h mod n_k (ggml tiles, it does not interleave).
    pool.parallel_for(n_v, 1, [&](int64_t begin, int64_t end) {
      for (int64_t h = begin; h < end; ++h)
        kernels::gated_delta_step(ssm_state + h * S * S, qs + (h % n_k) * S, ks + (h % n_k) * S,
                                  vs + h * S, g[t * n_v + h], beta[t * n_v + h], S,
                                  o.data() + t * d_inner + h * S);
    });
    for (int64_t h = 0; h < n_v; ++h) {
      float* oh = o.data() + t * d_inner + h * S;
      kernels::rms_norm(oh, l.ssm_norm.f32(), eps, S, oh);
      const float* zh = z.data() + t * d_inner + h * S;
      for (int64_t j = 0; j < S; ++j) oh[j] *= kernels::silu(zh[j]);
    }
  }
  if (observer_ != nullptr)
    observer_->observe(fmt::format("blk.{}.delta_out", il), o.data(), n_tokens, d_inner);
  linear(pool, l.ssm_out, {}, o.data(), n_tokens, io);
}

Status Session::truncate(int32_t seq, int64_t n) {
  if (seq < 0 || seq >= n_seq())
    return make_error(ErrorCode::kInvalidArgument, "sequence {} is outside [0, {})", seq, n_seq());
  const int64_t n_past = n_past_[static_cast<size_t>(seq)];
  if (n < 0 || n > n_past)
    return make_error(ErrorCode::kInvalidArgument,
                      "cannot truncate sequence {} to {} positions: it holds {}", seq, n, n_past);
  if (has_recurrent_ && n != 0 && n != n_past)
    return make_error(ErrorCode::kUnsupported,
                      "cannot truncate sequence {} to {} of its {} positions: a recurrent "
                      "layer's state cannot be rewound (only to 0 or kept whole)",
                      seq, n, n_past);
  n_past_[static_cast<size_t>(seq)] = n;
  return Status::ok_status();
}

Status Session::validate(std::span<const SeqBatch> chunks) const {
  const Hparams& hp = model_.hp;
  std::vector<bool> seen(n_past_.size(), false);
  for (size_t ci = 0; ci < chunks.size(); ++ci) {
    const SeqBatch& c = chunks[ci];
    if (c.seq < 0 || c.seq >= n_seq())
      return make_error(ErrorCode::kInvalidArgument,
                        "chunk {} names sequence {}, outside [0, {}) of this session", ci, c.seq,
                        n_seq());
    if (seen[static_cast<size_t>(c.seq)])
      return make_error(ErrorCode::kInvalidArgument,
                        "sequence {} appears in more than one chunk of a batch", c.seq);
    seen[static_cast<size_t>(c.seq)] = true;
    const int64_t n_tokens = static_cast<int64_t>(c.tokens.size());
    const int64_t n_past = n_past_[static_cast<size_t>(c.seq)];
    if (n_past + n_tokens > n_ctx_)
      return make_error(ErrorCode::kOutOfRange,
                        "context limit: {} tokens already in the cache + {} new > context size {}",
                        n_past, n_tokens, n_ctx_);
    for (int64_t t = 0; t < n_tokens; ++t)
      if (c.tokens[t] < 0 || c.tokens[t] >= hp.n_vocab)
        return make_error(ErrorCode::kInvalidArgument,
                          "token {} at index {} is outside the vocabulary [0, {})", c.tokens[t], t,
                          hp.n_vocab);
    for (int64_t r : c.logit_rows)
      if (r < 0 || r >= n_tokens)
        return make_error(ErrorCode::kInvalidArgument,
                          "logits requested for row {} of a batch of {}", r, n_tokens);
  }
  return Status::ok_status();
}

Status Session::eval(std::span<const int32_t> tokens, std::span<const int64_t> logit_rows,
                     float* logits) {
  if (tokens.empty()) return Status::ok_status();
  const SeqBatch chunk{0, tokens, logit_rows};
  return eval_batch(std::span<const SeqBatch>(&chunk, 1), logits);
}

Status Session::eval_batch(std::span<const SeqBatch> chunks, float* logits) {
  LOUPE_TRY(validate(chunks));
  forward(chunks, logits, nullptr);
  return Status::ok_status();
}

Status Session::eval_hidden(int32_t seq, std::span<const int32_t> tokens, float* hidden) {
  if (tokens.empty()) return Status::ok_status();
  const SeqBatch chunk{seq, tokens, {}};
  LOUPE_TRY(validate(std::span<const SeqBatch>(&chunk, 1)));
  forward(std::span<const SeqBatch>(&chunk, 1), nullptr, hidden);
  return Status::ok_status();
}

void Session::forward(std::span<const SeqBatch> chunks, float* logits, float* hidden) {
  const Hparams& hp = model_.hp;
  const ArchSpec& spec = *model_.spec;
  ThreadPool& pool = *pool_;
  const int64_t n_embd = hp.n_embd;
  const float eps = static_cast<float>(hp.norm_eps);

  // The chunks laid end to end: token t of the batch belongs to sequence token_seq[t] at
  // position positions[t]; chunk ci spans [chunk_begin[ci], chunk_begin[ci + 1]).
  std::vector<int32_t> tokens, token_seq, positions;
  std::vector<int64_t> chunk_begin = {0};
  for (const SeqBatch& c : chunks) {
    const int64_t n_past = n_past_[static_cast<size_t>(c.seq)];
    for (size_t i = 0; i < c.tokens.size(); ++i) {
      tokens.push_back(c.tokens[i]);
      token_seq.push_back(c.seq);
      positions.push_back(static_cast<int32_t>(n_past + static_cast<int64_t>(i)));
    }
    chunk_begin.push_back(static_cast<int64_t>(tokens.size()));
    if (n_past == 0 && !c.tokens.empty()) {  // a new sequence: recurrent states start from zero
      for (Impl::LayerCache& lc : impl_->layers) {
        std::fill_n(lc.conv.data() + c.seq * lc.conv_floats, lc.conv_floats, 0.0f);
        std::fill_n(lc.ssm.data() + c.seq * lc.ssm_floats, lc.ssm_floats, 0.0f);
      }
    }
  }
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  if (n_tokens == 0) return;

  auto observe = [&](int64_t il, const char* name, const float* data, int64_t rows, int64_t cols) {
    if (observer_ == nullptr) return;
    observer_->observe(il < 0 ? std::string(name) : fmt::format("blk.{}.{}", il, name), data, rows,
                       cols);
  };

  // Residual stream x [n_tokens, n_embd].
  std::vector<float> x(static_cast<size_t>(n_tokens * n_embd));
  for (int64_t t = 0; t < n_tokens; ++t) model_.tok_embd.row_f32(tokens[t], x.data() + t * n_embd);
  if (spec.embd_scale) {
    const float s = std::sqrt(static_cast<float>(n_embd));
    for (float& v : x) v *= s;
  }
  observe(-1, "inp_embd", x.data(), n_tokens, n_embd);
  const int64_t n_kv_owner = std::count(hp.kv_shared.begin(), hp.kv_shared.end(), false);

  // Per-layer inputs (Gemma 3n / Gemma 4): a per-layer token embedding plus a projection
  // of the scaled embedding, normed per layer chunk. pl: [n_tokens, n_layer, n_pl].
  std::vector<float> pl;
  const int64_t n_pl = model_.per_layer_proj_norm ? model_.per_layer_proj_norm.ne(0) : 0;
  if (n_pl > 0) {
    const int64_t width = n_pl * hp.n_layer;
    std::vector<float> proj(static_cast<size_t>(n_tokens * width));
    pl.resize(proj.size());
    kernels::matmul(pool, model_.per_layer_model_proj.matrix(), x.data(), n_tokens, proj.data());
    const float proj_scale = 1.0f / std::sqrt(static_cast<float>(n_embd));
    const float emb_scale = std::sqrt(static_cast<float>(n_pl));
    const float input_scale = 1.0f / std::sqrt(2.0f);
    for (float& e : proj) e *= proj_scale;
    norm_rows(model_.per_layer_proj_norm, eps, proj.data(), n_tokens * hp.n_layer, n_pl,
              proj.data());
    for (int64_t t = 0; t < n_tokens; ++t) {
      model_.per_layer_tok_embd.row_f32(tokens[t], pl.data() + t * width);
      for (int64_t i = 0; i < width; ++i) {
        float& e = pl[t * width + i];
        e = (proj[t * width + i] + e * emb_scale) * input_scale;
      }
    }
  }

  std::vector<float> cur(x.size()), tmp, q, k, v, gate, attn, ffn_out(x.size());
  // Dense FFN buffers, reused by every layer (fresh ones per layer cost page faults on
  // prompt batches: 3 × n_tokens × n_ff floats).
  std::vector<float> ffn_g, ffn_u, ffn_a;
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    const LayerWeights& l = model_.layers[il];
    const bool swa = hp.layer_kind[il] == LayerKind::kSlidingAttention;
    const int64_t n_head = hp.n_head[il];
    const int64_t n_head_kv = hp.n_head_kv[il];
    const int64_t dk = head_dim_k(hp, il);
    const int64_t dv = head_dim_v(hp, il);
    const int64_t nq = n_head * dk, nk = n_head_kv * dk, nv = n_head_kv * dv;
    // Layers at the end of a KV-sharing stack attend over the last earlier layer of their
    // kind that has its own K/V (llama.cpp's rule for Gemma 3n / Gemma 4).
    const bool has_kv = !hp.kv_shared[il];
    const int64_t kv_layer = has_kv ? il : n_kv_owner - (swa ? 2 : 1);

    // ---- attention (or the recurrent mixer)
    norm_rows(l.attn_norm, eps, x.data(), n_tokens, n_embd, cur.data());
    observe(il, "attn_norm", cur.data(), n_tokens, n_embd);
    if (hp.layer_kind[il] == LayerKind::kRecurrent) {
      delta_net_mixer(il, cur.data(), token_seq);
    } else {
      q.resize(static_cast<size_t>(n_tokens * nq));
      k.resize(static_cast<size_t>(n_tokens * nk));
      v.resize(static_cast<size_t>(n_tokens * nv));
      if (l.wqkv) {
        tmp.resize(static_cast<size_t>(n_tokens * (nq + nk + nv)));
        linear(pool, l.wqkv, {}, cur.data(), n_tokens, tmp.data());
        for (int64_t t = 0; t < n_tokens; ++t) {
          const float* row = tmp.data() + t * (nq + nk + nv);
          std::copy(row, row + nq, q.data() + t * nq);
          std::copy(row + nq, row + nq + nk, k.data() + t * nk);
          std::copy(row + nq + nk, row + nq + nk + nv, v.data() + t * nv);
        }
      } else if (spec.gated_attention) {
        // attn_q yields, per head, dk query values then dk gate values.
        tmp.resize(static_cast<size_t>(n_tokens * 2 * nq));
        gate.resize(static_cast<size_t>(n_tokens * nq));
        linear(pool, l.wq, {}, cur.data(), n_tokens, tmp.data());
        for (int64_t t = 0; t < n_tokens; ++t)
          for (int64_t h = 0; h < n_head; ++h) {
            const float* src = tmp.data() + (t * n_head + h) * 2 * dk;
            std::copy(src, src + dk, q.data() + t * nq + h * dk);
            std::copy(src + dk, src + 2 * dk, gate.data() + t * nq + h * dk);
          }
        linear(pool, l.wk, {}, cur.data(), n_tokens, k.data());
        linear(pool, l.wv, {}, cur.data(), n_tokens, v.data());
      } else {
        linear(pool, l.wq, l.bq, cur.data(), n_tokens, q.data());
        if (has_kv) {
          linear(pool, l.wk, l.bk, cur.data(), n_tokens, k.data());
          if (l.wv) {
            linear(pool, l.wv, l.bv, cur.data(), n_tokens, v.data());
          } else {
            std::copy(k.begin(), k.end(), v.begin());  // K doubles as V (gemma4 global layers)
          }
        }
      }
      if (l.q_norm)
        for (int64_t r = 0; r < n_tokens * n_head; ++r)
          kernels::rms_norm(q.data() + r * dk, l.q_norm.f32(), eps, dk, q.data() + r * dk);
      if (l.k_norm && has_kv)
        for (int64_t r = 0; r < n_tokens * n_head_kv; ++r)
          kernels::rms_norm(k.data() + r * dk, l.k_norm.f32(), eps, dk, k.data() + r * dk);
      if (spec.v_norm && has_kv)
        for (int64_t r = 0; r < n_tokens * n_head_kv; ++r)
          kernels::rms_norm(v.data() + r * dv, nullptr, eps, dv, v.data() + r * dv);
      kernels::RopeParams rp;
      rp.style = spec.rope_style;
      rp.n_dims = static_cast<int>(swa ? hp.rope_dims_swa : hp.rope_dims);
      rp.freq_base = static_cast<float>(swa && hp.rope_freq_base_swa > 0 ? hp.rope_freq_base_swa
                                                                         : hp.rope_freq_base);
      rp.freq_factors = model_.rope_freqs && !swa ? model_.rope_freqs.f32() : nullptr;
      if (!(swa && spec.swa_rope_unscaled) && hp.rope_scaling_factor > 0 &&
          (hp.rope_scaling == "linear" || hp.rope_scaling == "yarn")) {
        rp.freq_scale = static_cast<float>(1.0 / hp.rope_scaling_factor);
        if (hp.rope_scaling == "yarn") {
          // llama.cpp cancels the magnitude scale it would apply, since ggml's rope applies
          // 1 + 0.1·ln(factor) itself when ext_factor != 0 (llama-context.cpp).
          const float factor = 1.0f / rp.freq_scale;
          rp.attn_factor =
              (0.1f * std::log(factor) + 1.0f) * (1.0f / (1.0f + 0.1f * std::log(factor)));
          rp.ext_factor = 1.0f;
          rp.n_ctx_orig =
              static_cast<int>(hp.rope_orig_ctx > 0 ? hp.rope_orig_ctx : hp.n_ctx_train);
        }
      }
      for (int64_t t = 0; t < n_tokens; ++t) {
        kernels::rope(rp, positions[t], q.data() + t * nq, n_head, dk);
        if (has_kv) kernels::rope(rp, positions[t], k.data() + t * nk, n_head_kv, dk);
      }
      if (spec.attn_scale == AttnScale::kQuery) {
        const float s = 1.0f / std::sqrt(static_cast<float>(dk));
        for (float& e : q) e *= s;
      }
      observe(il, "q", q.data(), n_tokens, nq);
      observe(il, "k", k.data(), n_tokens, nk);
      observe(il, "v", v.data(), n_tokens, nv);

      Impl::LayerCache& c = impl_->layers[kv_layer];
      for (int64_t t = 0; t < n_tokens && has_kv; ++t) {
        const int64_t cell = token_seq[t] * n_ctx_ + positions[t];
        kernels::store_kv_row(params_.cache_type_k, k.data() + t * nk, nk,
                              c.k.data() + cell * c.k_stride);
        kernels::store_kv_row(params_.cache_type_v, v.data() + t * nv, nv,
                              c.v.data() + cell * c.v_stride);
      }
      kernels::AttentionParams ap;
      ap.n_head = n_head;
      ap.n_head_kv = n_head_kv;
      ap.head_dim_k = dk;
      ap.head_dim_v = dv;
      ap.scale =
          spec.attn_scale == AttnScale::kSoftmax ? 1.0f / std::sqrt(static_cast<float>(dk)) : 1.0f;
      ap.softcap = static_cast<float>(hp.attn_softcap);
      ap.window = swa ? hp.sliding_window : 0;
      ap.sinks = l.sinks ? l.sinks.f32() : nullptr;
      attn.resize(static_cast<size_t>(n_tokens * n_head * dv));
      // Each chunk attends over its own sequence's cells only.
      for (size_t ci = 0; ci < chunks.size(); ++ci) {
        const int64_t t0 = chunk_begin[ci], n = chunk_begin[ci + 1] - t0;
        if (n == 0) continue;
        const size_t first_cell = static_cast<size_t>(chunks[ci].seq * n_ctx_);
        const kernels::KvView kv{params_.cache_type_k,
                                 params_.cache_type_v,
                                 c.k.data() + first_cell * c.k_stride,
                                 c.v.data() + first_cell * c.v_stride,
                                 c.k_stride,
                                 c.v_stride};
        kernels::attention(pool, ap, kv, q.data() + t0 * nq, positions.data() + t0, n,
                           attn.data() + t0 * n_head * dv);
      }
      if (spec.gated_attention)
        for (size_t i = 0; i < attn.size(); ++i) attn[i] *= kernels::sigmoid(gate[i]);
      observe(il, "kqv_out", attn.data(), n_tokens, n_head * dv);
      linear(pool, l.wo, l.bo, attn.data(), n_tokens, cur.data());
      if (l.attn_post_norm)
        norm_rows(l.attn_post_norm, eps, cur.data(), n_tokens, n_embd, cur.data());
    }
    observe(il, "attn_out", cur.data(), n_tokens, n_embd);
    for (size_t i = 0; i < x.size(); ++i) x[i] += cur[i];
    observe(il, "ffn_inp", x.data(), n_tokens, n_embd);

    // ---- feed-forward
    norm_rows(l.ffn_norm, eps, x.data(), n_tokens, n_embd, cur.data());
    observe(il, "ffn_norm", cur.data(), n_tokens, n_embd);
    auto moe_ffn = [&](const float* xin, const float* rin, float* out) {
      const int64_t n_expert = hp.n_expert;
      const int64_t n_used = hp.n_expert_used;
      std::vector<float> router(static_cast<size_t>(n_tokens * n_expert));
      linear(pool, l.gate_inp, l.gate_inp_b, rin, n_tokens, router.data());
      observe(il, "ffn_moe_logits", router.data(), n_tokens, n_expert);
      std::vector<int64_t> chosen(static_cast<size_t>(n_tokens * n_used));
      std::vector<float> weights(static_cast<size_t>(n_tokens * n_used));
      std::vector<int64_t> order(static_cast<size_t>(n_expert));
      for (int64_t t = 0; t < n_tokens; ++t) {
        std::vector<float> p(router.begin() + t * n_expert, router.begin() + (t + 1) * n_expert);
        if (spec.gating == ExpertGating::kSoftmax) kernels::softmax(p.data(), n_expert);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(),
                         [&](int64_t a, int64_t b) { return p[a] > p[b]; });
        float* w = weights.data() + t * n_used;
        for (int64_t s = 0; s < n_used; ++s) {
          chosen[t * n_used + s] = order[s];
          w[s] = p[order[s]];
        }
        if (spec.gating == ExpertGating::kSoftmaxOfTopK) kernels::softmax(w, n_used);
        if (spec.expert_weights_norm) {
          double sum = 0.0;
          for (int64_t s = 0; s < n_used; ++s) sum += w[s];
          const float fs = static_cast<float>(sum);
          for (int64_t s = 0; s < n_used; ++s) w[s] /= fs;
        }
      }
      // Each expert runs once on the tokens routed to it.
      const Weight& up_w = l.gate_up_exps ? l.gate_up_exps : l.up_exps;
      const int64_t n_ff = l.down_exps.ne(0);
      std::vector<float> expert_out(static_cast<size_t>(n_tokens * n_used * n_embd));
      std::vector<float> xe, ge, ue, ae, de;
      for (int64_t e = 0; e < n_expert; ++e) {
        std::vector<int64_t> slots;  // t * n_used + s
        for (int64_t i = 0; i < n_tokens * n_used; ++i)
          if (chosen[i] == e) slots.push_back(i);
        if (slots.empty()) continue;
        const int64_t n = static_cast<int64_t>(slots.size());
        xe.resize(static_cast<size_t>(n * n_embd));
        for (int64_t i = 0; i < n; ++i)
          std::copy_n(xin + (slots[i] / n_used) * n_embd, n_embd, xe.data() + i * n_embd);
        ae.resize(static_cast<size_t>(n * n_ff));
        if (l.gate_up_exps) {
          tmp.resize(static_cast<size_t>(n * 2 * n_ff));
          kernels::matmul(pool, up_w.matrix(e), xe.data(), n, tmp.data());
          for (int64_t i = 0; i < n; ++i)
            activate(spec.activation, tmp.data() + i * 2 * n_ff, tmp.data() + i * 2 * n_ff + n_ff,
                     n_ff, ae.data() + i * n_ff);
        } else {
          ge.resize(static_cast<size_t>(n * n_ff));
          ue.resize(static_cast<size_t>(n * n_ff));
          kernels::matmul(pool, l.gate_exps.matrix(e), xe.data(), n, ge.data());
          kernels::matmul(pool, l.up_exps.matrix(e), xe.data(), n, ue.data());
          for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < n_ff; ++j) {
              if (l.gate_exps_b) ge[i * n_ff + j] += l.gate_exps_b.f32()[e * n_ff + j];
              if (l.up_exps_b) ue[i * n_ff + j] += l.up_exps_b.f32()[e * n_ff + j];
            }
          activate(spec.activation, ge.data(), ue.data(), n * n_ff, ae.data());
        }
        de.resize(static_cast<size_t>(n * n_embd));
        kernels::matmul(pool, l.down_exps.matrix(e), ae.data(), n, de.data());
        for (int64_t i = 0; i < n; ++i) {
          float* dst = expert_out.data() + slots[i] * n_embd;
          const float* src = de.data() + i * n_embd;
          for (int64_t j = 0; j < n_embd; ++j)
            dst[j] = l.down_exps_b ? src[j] + l.down_exps_b.f32()[e * n_embd + j] : src[j];
          if (l.down_exps_scale)
            for (int64_t j = 0; j < n_embd; ++j) dst[j] *= l.down_exps_scale.f32()[e];
        }
      }
      for (int64_t t = 0; t < n_tokens; ++t) {
        float* o = out + t * n_embd;
        for (int64_t s = 0; s < n_used; ++s) {
          const float w = weights[t * n_used + s];
          const float* src = expert_out.data() + (t * n_used + s) * n_embd;
          for (int64_t j = 0; j < n_embd; ++j) o[j] = s == 0 ? src[j] * w : o[j] + src[j] * w;
        }
      }
      if (l.gate_shexp) {
        const int64_t n_ff_sh = l.gate_shexp.ne(1);
        std::vector<float> g(static_cast<size_t>(n_tokens * n_ff_sh)), u(g.size()), a(g.size());
        std::vector<float> sh(static_cast<size_t>(n_tokens * n_embd)),
            sgate(static_cast<size_t>(n_tokens));
        linear(pool, l.gate_shexp, {}, xin, n_tokens, g.data());
        linear(pool, l.up_shexp, {}, xin, n_tokens, u.data());
        activate(spec.activation, g.data(), u.data(), n_tokens * n_ff_sh, a.data());
        linear(pool, l.down_shexp, {}, a.data(), n_tokens, sh.data());
        if (l.gate_inp_shexp) {
          kernels::Matrix gm{DType::kF32, l.gate_inp_shexp.info->data, n_embd, 1,
                             static_cast<size_t>(n_embd) * sizeof(float), nullptr};
          kernels::matmul(pool, gm, xin, n_tokens, sgate.data());
        }
        for (int64_t t = 0; t < n_tokens; ++t) {
          const float gt = l.gate_inp_shexp ? kernels::sigmoid(sgate[t]) : 1.0f;
          for (int64_t j = 0; j < n_embd; ++j) out[t * n_embd + j] += sh[t * n_embd + j] * gt;
        }
      }
    };
    auto dense_ffn = [&](const float* xin, float* out) {
      const int64_t n_ff = l.ffn_down.ne(0);
      std::vector<float>& g = ffn_g;
      std::vector<float>& u = ffn_u;
      std::vector<float>& a = ffn_a;
      g.resize(static_cast<size_t>(n_tokens * n_ff));
      a.resize(g.size());
      if (l.ffn_gate) {
        u.resize(g.size());
        linear(pool, l.ffn_gate, {}, xin, n_tokens, g.data());
        linear(pool, l.ffn_up, {}, xin, n_tokens, u.data());
        activate(spec.activation, g.data(), u.data(), n_tokens * n_ff, a.data());
      } else {  // fused [gate | up]
        tmp.resize(static_cast<size_t>(n_tokens * 2 * n_ff));
        linear(pool, l.ffn_up, {}, xin, n_tokens, tmp.data());
        for (int64_t t = 0; t < n_tokens; ++t)
          activate(spec.activation, tmp.data() + t * 2 * n_ff, tmp.data() + t * 2 * n_ff + n_ff,
                   n_ff, a.data() + t * n_ff);
      }
      linear(pool, l.ffn_down, {}, a.data(), n_tokens, out);
    };
    if (l.gate_inp && l.ffn_gate) {
      // Experts beside a dense FFN (gemma4): each branch has its own norms; the router
      // sees the weightless RMS norm of the residual / sqrt(n_embd) times a learned scale.
      std::vector<float> f2(x.size()), rin(x.size()), xin(x.size());
      dense_ffn(cur.data(), ffn_out.data());
      norm_rows(l.ffn_post_norm_1, eps, ffn_out.data(), n_tokens, n_embd, ffn_out.data());
      norm_rows({}, eps, x.data(), n_tokens, n_embd, rin.data());
      const float rs = 1.0f / std::sqrt(static_cast<float>(n_embd));
      for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t j = 0; j < n_embd; ++j)
          rin[t * n_embd + j] = rin[t * n_embd + j] * rs * l.gate_inp_scale.f32()[j];
      norm_rows(l.ffn_pre_norm_2, eps, x.data(), n_tokens, n_embd, xin.data());
      moe_ffn(xin.data(), rin.data(), f2.data());
      norm_rows(l.ffn_post_norm_2, eps, f2.data(), n_tokens, n_embd, f2.data());
      for (size_t i = 0; i < x.size(); ++i) ffn_out[i] += f2[i];
    } else if (l.gate_inp) {
      moe_ffn(cur.data(), cur.data(), ffn_out.data());
    } else {
      dense_ffn(cur.data(), ffn_out.data());
    }
    if (l.ffn_post_norm)
      norm_rows(l.ffn_post_norm, eps, ffn_out.data(), n_tokens, n_embd, ffn_out.data());
    observe(il, "ffn_out", ffn_out.data(), n_tokens, n_embd);
    for (size_t i = 0; i < x.size(); ++i) x[i] += ffn_out[i];
    if (l.pl_inp_gate) {
      std::vector<float> g(static_cast<size_t>(n_tokens * n_pl));
      linear(pool, l.pl_inp_gate, {}, x.data(), n_tokens, g.data());
      for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t i = 0; i < n_pl; ++i) {
          float& e = g[t * n_pl + i];
          e = kernels::gelu(e) * pl[(t * hp.n_layer + il) * n_pl + i];
        }
      linear(pool, l.pl_proj, {}, g.data(), n_tokens, cur.data());
      norm_rows(l.pl_post_norm, eps, cur.data(), n_tokens, n_embd, cur.data());
      for (size_t i = 0; i < x.size(); ++i) x[i] += cur[i];
    }
    if (l.out_scale)
      for (float& e : x) e *= l.out_scale.f32()[0];
    observe(il, "l_out", x.data(), n_tokens, n_embd);
  }

  // ---- output, only for the requested rows (every row when the hidden states are wanted)
  std::vector<int64_t> rows;  // indices into the batch
  if (hidden != nullptr) {
    rows.resize(static_cast<size_t>(n_tokens));
    std::iota(rows.begin(), rows.end(), 0);
  } else {
    for (size_t ci = 0; ci < chunks.size(); ++ci)
      for (int64_t r : chunks[ci].logit_rows) rows.push_back(chunk_begin[ci] + r);
  }
  const int64_t n_rows = static_cast<int64_t>(rows.size());
  if (n_rows > 0) {
    std::vector<float> xr;
    float* normed = hidden;
    if (normed == nullptr) {
      xr.resize(static_cast<size_t>(n_rows * n_embd));
      normed = xr.data();
    }
    for (int64_t r = 0; r < n_rows; ++r)
      kernels::rms_norm(x.data() + rows[r] * n_embd, model_.output_norm.f32(), eps, n_embd,
                        normed + r * n_embd);
    observe(-1, "result_norm", normed, n_rows, n_embd);
    if (hidden == nullptr) {
      kernels::matmul(pool, model_.output.matrix(), normed, n_rows, logits);
      if (hp.final_softcap > 0)
        kernels::softcap(logits, n_rows * hp.n_vocab, static_cast<float>(hp.final_softcap));
      observe(-1, "result_output", logits, n_rows, hp.n_vocab);
    }
  }
  for (const SeqBatch& c : chunks)
    n_past_[static_cast<size_t>(c.seq)] += static_cast<int64_t>(c.tokens.size());
}

}  // namespace loupe::runtime
