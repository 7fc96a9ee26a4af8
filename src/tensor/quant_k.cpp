// Reference (de)quantization of the K-quants Q2_K..Q6_K and Q8_K: 256-element super-blocks
// of 16- or 32-element groups, each group with its own scale (and min), the group scales
// themselves quantized against one F16 super-block scale.
//
// Algorithms: ggml-quants.c (llama.cpp b4748) quantize_row_{q2..q8}_K_ref with their
// helpers make_qkx2_quants (Q2_K, Q4_K, Q5_K: weighted least-squares fit of scale and
// min over a sweep of candidate scales), make_q3_quants (Q3_K: coordinate descent on the
// codes), make_qx_quants (Q6_K: least-squares scale over a sweep of 19 candidates). These
// are what `llama-quantize` runs when no importance matrix is given.
#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include "tensor/quant.h"
#include "tensor/quant_impl.h"

namespace loupe {
namespace {

using quant_detail::clamp_int;
using quant_detail::nearest_int;
using quant_detail::signed_absmax;

constexpr float kGroupMaxEps = 1e-15f;  // GROUP_MAX_EPS: groups below are all-zero

// make_qkx2_quants: fits x [n] ~ scale * L + min with L in [0, nmax] and min <= 0,
// minimizing sum(weights * |err|) (use_mad) or sum(weights * err^2). Candidate scales are
// nmax + rmin + rdelta * is over the range, each refined by a weighted least-squares
// solve. Writes L [n] and the_min = -min (>= 0); returns the scale.
float fit_scale_min(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                    float* the_min, float rmin, float rdelta, int nstep, bool use_mad) {
  assert(n <= 32 && nstep >= 1);
  uint8_t laux[32];
  float min = x[0];
  float max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::memset(L, 0, static_cast<size_t>(n));
    *the_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax));
    float diff = scale * L[i] + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  for (int is = 0; is <= nstep; ++is) {
    // `min` may have moved to the best fit so far: ggml rescales around it.
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax);
      laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * laux[i] + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        error += weights[i] * diff;
      }
      if (error < best_error) {
        std::memcpy(L, laux, static_cast<size_t>(n));
        best_error = error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// make_q3_quants with do_rmse: symmetric codes L [n] in [0, 2*nmax) (offset by nmax),
// starting from round(x * -nmax / max) and then moving single codes while that increases
// (sum w x l)^2 / (sum w l^2) with w = x^2, up to 5 sweeps. Returns the scale.
float fit_scale_q3(int n, int nmax, const float* x, int8_t* L) {
  const auto [amax, max] = signed_absmax(x, n);
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.f;
  }
  const float iscale = -nmax / max;
  float sumlx = 0;
  float suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * L[i];
      if (slx > 0) {
        float sl2 = suml2 - w * L[i] * L[i];
        const int new_l = clamp_int(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
        if (new_l != L[i]) {
          slx += w * x[i] * new_l;
          sl2 += w * new_l * new_l;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  // b4748 divides unguarded; newer ggml guards the (practically unreachable) 0 / 0.
  return suml2 > 0 ? sumlx / suml2 : 0.0f;
}

// make_qx_quants with rmse_type 1 (weights x^2), no importance: codes L [n] in [0, 2*nmax)
// (offset by nmax) for the best of 19 candidate scales -(nmax + 0.1 * is) / max, each with
// its least-squares scale. Returns the scale.
float fit_scale_qx(int n, int nmax, const float* x, int8_t* L) {
  const auto [amax, max] = signed_absmax(x, n);
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.f;
  }
  float iscale = -nmax / max;
  float sumlx = 0;
  float suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i)
        L[i] = static_cast<int8_t>(nmax + clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Scale and min of group j (0..7) from the 12 packed bytes of Q4_K/Q5_K (ggml's
// get_scale_min_k4): groups 0..3 in the low 6 bits of bytes j and j+4; groups 4..7 take
// their low 4 bits from byte j+4 and their top 2 from the spare top bits of bytes j-4, j.
void get_scale_min_k4(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Signed 6-bit scale of group j (0..15) of Q3_K, as dequantize_row_q3_K unpacks it.
int q3_k_scale(const uint8_t* scales, int j) {
  const int low = j < 8 ? (scales[j] & 0xf) : (scales[j - 8] >> 4);
  const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// The shared first stage of Q4_K and Q5_K on one super-block x [256]: 8 groups of 32 fit
// with weights av_x + |x| (av_x = the group's RMS), group scales and mins quantized to 6 bits
// against d = max_scale / 63 and dmin = max_min / 63, then codes L [256] recomputed with
// the rounded scales. nmax 15 or 31.
void quantize_k4_super_block(const float* x, int nmax, float rmin, int nstep, uint16_t* d_out,
                             uint16_t* dmin_out, uint8_t* packed, uint8_t* L) {
  float scales[kQkK / 32];
  float mins[kQkK / 32];
  float weights[32];
  float max_scale = 0;  // scales are positive since the min is subtracted
  float max_min = 0;
  for (int j = 0; j < kQkK / 32; ++j) {
    const float* xg = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xg[l] * xg[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xg[l]);
    scales[j] =
        fit_scale_min(32, nmax, xg, weights, L + 32 * j, &mins[j], rmin, 0.1f, nstep, false);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }

  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < kQkK / 32; ++j) {
    // ggml stores nearest_int into a uint8_t before clamping; keep that wrap-around.
    uint8_t ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
    uint8_t lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
    ls = std::min<uint8_t>(63, ls);
    lm = std::min<uint8_t>(63, lm);
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = static_cast<uint8_t>((ls & 0xf) | ((lm & 0xf) << 4));
      packed[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      packed[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  *d_out = fp32_to_fp16(max_scale / 63.f);
  *dmin_out = fp32_to_fp16(max_min / 63.f);

  const float d_super = fp16_to_fp32(*d_out);
  const float dmin_super = fp16_to_fp32(*dmin_out);
  for (int j = 0; j < kQkK / 32; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, packed, &sc, &m);
    const float d = d_super * sc;
    if (!d) continue;  // keeps the fit's codes, as ggml does
    const float dm = dmin_super * m;
    for (int ii = 0; ii < 32; ++ii)
      L[32 * j + ii] =
          static_cast<uint8_t>(clamp_int(nearest_int((x[32 * j + ii] + dm) / d), 0, nmax));
  }
}

}  // namespace

void quantize_row_q2_k_ref(const float* x, BlockQ2_K* y, int64_t n) {
  assert(n % kQkK == 0);
  constexpr float kScaleLevels = 15.f;  // 4-bit group scales and mins
  for (int64_t i = 0; i < n / kQkK; ++i, x += kQkK) {
    uint8_t L[kQkK];
    float scales[kQkK / 16];
    float mins[kQkK / 16];
    float weights[16];
    float max_scale = 0;
    float max_min = 0;
    for (int j = 0; j < kQkK / 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] =
          fit_scale_min(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, true);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }

    if (max_scale > 0) {
      const float iscale = kScaleLevels / max_scale;
      for (int j = 0; j < kQkK / 16; ++j)
        y[i].scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
      y[i].d = fp32_to_fp16(max_scale / kScaleLevels);
    } else {
      std::memset(y[i].scales, 0, sizeof(y[i].scales));
      y[i].d = fp32_to_fp16(0.f);
    }
    if (max_min > 0) {
      const float iscale = kScaleLevels / max_min;
      for (int j = 0; j < kQkK / 16; ++j)
        y[i].scales[j] =
            static_cast<uint8_t>(y[i].scales[j] | (nearest_int(iscale * mins[j]) << 4));
      y[i].dmin = fp32_to_fp16(max_min / kScaleLevels);
    } else {
      y[i].dmin = fp32_to_fp16(0.f);
    }

    const float d_super = fp16_to_fp32(y[i].d);
    const float dmin_super = fp16_to_fp32(y[i].dmin);
    for (int j = 0; j < kQkK / 16; ++j) {
      const float d = d_super * (y[i].scales[j] & 0xf);
      if (!d) continue;
      const float dm = dmin_super * (y[i].scales[j] >> 4);
      for (int ii = 0; ii < 16; ++ii)
        L[16 * j + ii] =
            static_cast<uint8_t>(clamp_int(nearest_int((x[16 * j + ii] + dm) / d), 0, 3));
    }

    for (int h = 0; h < kQkK; h += 128)
      for (int l = 0; l < 32; ++l)
        y[i].qs[h / 4 + l] = static_cast<uint8_t>(L[h + l] | (L[h + l + 32] << 2) |
                                                  (L[h + l + 64] << 4) | (L[h + l + 96] << 6));
  }
}

void quantize_row_q3_k_ref(const float* x, BlockQ3_K* y, int64_t n) {
  assert(n % kQkK == 0);
  for (int64_t i = 0; i < n / kQkK; ++i, x += kQkK) {
    int8_t L[kQkK];
    float scales[kQkK / 16];
    float max_scale = 0;
    float amax = 0;
    for (int j = 0; j < kQkK / 16; ++j) {
      scales[j] = fit_scale_q3(16, 4, x + 16 * j, L + 16 * j);
      const float scale = std::fabs(scales[j]);
      if (scale > amax) {
        amax = scale;
        max_scale = scales[j];
      }
    }

    // 6-bit signed group scales against d = max_scale / -32, so the largest maps to -32.
    std::memset(y[i].scales, 0, sizeof(y[i].scales));
    if (max_scale) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < kQkK / 16; ++j) {
        const int l = clamp_int(static_cast<int8_t>(nearest_int(iscale * scales[j])), -32, 31) + 32;
        if (j < 8)
          y[i].scales[j] = static_cast<uint8_t>(l & 0xf);
        else
          y[i].scales[j - 8] |= static_cast<uint8_t>((l & 0xf) << 4);
        y[i].scales[j % 4 + 8] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
      }
      y[i].d = fp32_to_fp16(1 / iscale);
    } else {
      y[i].d = fp32_to_fp16(0.f);
    }

    const float d_super = fp16_to_fp32(y[i].d);
    for (int j = 0; j < kQkK / 16; ++j) {
      const float d = d_super * q3_k_scale(y[i].scales, j);
      if (!d) continue;  // keeps the fit's codes, as ggml does
      for (int ii = 0; ii < 16; ++ii)
        L[16 * j + ii] = static_cast<int8_t>(clamp_int(nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
    }

    std::memset(y[i].hmask, 0, sizeof(y[i].hmask));
    for (int j = 0; j < kQkK; ++j) {
      if (L[j] > 3) {
        y[i].hmask[j % 32] |= static_cast<uint8_t>(1 << (j / 32));
        L[j] = static_cast<int8_t>(L[j] - 4);
      }
    }
    for (int h = 0; h < kQkK; h += 128)
      for (int l = 0; l < 32; ++l)
        y[i].qs[h / 4 + l] = static_cast<uint8_t>(L[h + l] | (L[h + l + 32] << 2) |
                                                  (L[h + l + 64] << 4) | (L[h + l + 96] << 6));
  }
}

void quantize_row_q4_k_ref(const float* x, BlockQ4_K* y, int64_t n) {
  assert(n % kQkK == 0);
  for (int64_t i = 0; i < n / kQkK; ++i, x += kQkK) {
    uint8_t L[kQkK];
    quantize_k4_super_block(x, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
    for (int p = 0; p < kQkK / 64; ++p)
      for (int l = 0; l < 32; ++l)
        y[i].qs[32 * p + l] = static_cast<uint8_t>(L[64 * p + l] | (L[64 * p + 32 + l] << 4));
  }
}

void quantize_row_q5_k_ref(const float* x, BlockQ5_K* y, int64_t n) {
  assert(n % kQkK == 0);
  for (int64_t i = 0; i < n / kQkK; ++i, x += kQkK) {
    uint8_t L[kQkK];
    quantize_k4_super_block(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
    std::memset(y[i].qh, 0, sizeof(y[i].qh));
    for (int p = 0; p < kQkK / 64; ++p) {
      for (int l = 0; l < 32; ++l) {
        const int lo = L[64 * p + l];
        const int hi = L[64 * p + 32 + l];
        y[i].qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * p)) | ((hi >> 4) << (2 * p + 1)));
        y[i].qs[32 * p + l] = static_cast<uint8_t>((lo & 0xf) | ((hi & 0xf) << 4));
      }
    }
  }
}

void quantize_row_q6_k_ref(const float* x, BlockQ6_K* y, int64_t n) {
  assert(n % kQkK == 0);
  for (int64_t i = 0; i < n / kQkK; ++i, x += kQkK) {
    int8_t L[kQkK];
    float scales[kQkK / 16];
    float max_scale = 0;
    float max_abs_scale = 0;
    for (int j = 0; j < kQkK / 16; ++j) {
      scales[j] = fit_scale_qx(16, 32, x + 16 * j, L + 16 * j);
      const float abs_scale = std::fabs(scales[j]);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scales[j];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[i], 0, sizeof(y[i]));
      continue;
    }

    // 8-bit signed group scales against d = max_scale / -128.
    const float iscale = -128.f / max_scale;
    y[i].d = fp32_to_fp16(1 / iscale);
    for (int j = 0; j < kQkK / 16; ++j)
      y[i].scales[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[j])));

    const float d_super = fp16_to_fp32(y[i].d);
    for (int j = 0; j < kQkK / 16; ++j) {
      const float d = d_super * y[i].scales[j];
      if (!d) continue;  // keeps the fit's codes, as ggml does
      for (int ii = 0; ii < 16; ++ii)
        L[16 * j + ii] =
            static_cast<int8_t>(clamp_int(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
    }

    for (int h = 0; h < kQkK / 128; ++h) {
      const int8_t* lh = L + 128 * h;
      for (int l = 0; l < 32; ++l) {
        y[i].ql[64 * h + l] = static_cast<uint8_t>((lh[l] & 0xf) | ((lh[l + 64] & 0xf) << 4));
        y[i].ql[64 * h + 32 + l] =
            static_cast<uint8_t>((lh[l + 32] & 0xf) | ((lh[l + 96] & 0xf) << 4));
        y[i].qh[32 * h + l] =
            static_cast<uint8_t>((lh[l] >> 4) | ((lh[l + 32] >> 4) << 2) |
                                 ((lh[l + 64] >> 4) << 4) | ((lh[l + 96] >> 4) << 6));
      }
    }
  }
}

// Activation quantization for the K-quant dot products: d = max / -127 (so the extreme
// maps to -127 and the int8 range stays symmetric), F32 d, and the 16-element sums.
void quantize_row_q8_k_ref(const float* x, BlockQ8_K* y, int64_t n) {
  assert(n % kQkK == 0);
  for (int64_t i = 0; i < n / kQkK; ++i, x += kQkK) {
    const auto [amax, max] = signed_absmax(x, kQkK);
    if (!amax) {
      std::memset(&y[i], 0, sizeof(y[i]));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < kQkK; ++j)
      y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    for (int j = 0; j < kQkK / 16; ++j) {
      int sum = 0;
      for (int ii = 0; ii < 16; ++ii) sum += y[i].qs[16 * j + ii];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

void dequantize_row_q2_k_ref(const BlockQ2_K* x, float* y, int64_t n) {
  assert(n % kQkK == 0);
  for (int64_t i = 0; i < n / kQkK; ++i, y += kQkK) {
    const float d = fp16_to_fp32(x[i].d);
    const float min = fp16_to_fp32(x[i].dmin);
    for (int e = 0; e < kQkK; ++e) {
      const int g = e / 16;  // group of 16
      const int q = (x[i].qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
      const float dl = d * (x[i].scales[g] & 0xf);
      const float ml = min * (x[i].scales[g] >> 4);
      y[e] = dl * q - ml;
    }
  }
}

void dequantize_row_q3_k_ref(const BlockQ3_K* x, float* y, int64_t n) {
  assert(n % kQkK == 0);
  for (int64_t i = 0; i < n / kQkK; ++i, y += kQkK) {
    const float d_all = fp16_to_fp32(x[i].d);
    for (int e = 0; e < kQkK; ++e) {
      const int low = (x[i].qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
      const int high = (x[i].hmask[e % 32] >> (e / 32)) & 1;
      const float dl = d_all * q3_k_scale(x[i].scales, e / 16);
      y[e] = dl * (low - (high ? 0 : 4));
    }
  }
}

void dequantize_row_q4_k_ref(const BlockQ4_K* x, float* y, int64_t n) {
  assert(n % kQkK == 0);
  for (int64_t i = 0; i < n / kQkK; ++i, y += kQkK) {
    const float d = fp16_to_fp32(x[i].d);
    const float min = fp16_to_fp32(x[i].dmin);
    for (int j = 0; j < kQkK / 32; ++j) {
      uint8_t sc, m;
      get_scale_min_k4(j, x[i].scales, &sc, &m);
      const float dl = d * sc;
      const float ml = min * m;
      const uint8_t* q = x[i].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) y[32 * j + l] = dl * ((q[l] >> shift) & 0xf) - ml;
    }
  }
}

void dequantize_row_q5_k_ref(const BlockQ5_K* x, float* y, int64_t n) {
  assert(n % kQkK == 0);
  for (int64_t i = 0; i < n / kQkK; ++i, y += kQkK) {
    const float d = fp16_to_fp32(x[i].d);
    const float min = fp16_to_fp32(x[i].dmin);
    for (int j = 0; j < kQkK / 32; ++j) {
      uint8_t sc, m;
      get_scale_min_k4(j, x[i].scales, &sc, &m);
      const float dl = d * sc;
      const float ml = min * m;
      const uint8_t* q = x[i].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) {
        const int code = ((q[l] >> shift) & 0xf) + (((x[i].qh[l] >> j) & 1) << 4);
        y[32 * j + l] = dl * code - ml;
      }
    }
  }
}

void dequantize_row_q6_k_ref(const BlockQ6_K* x, float* y, int64_t n) {
  assert(n % kQkK == 0);
  for (int64_t i = 0; i < n / kQkK; ++i, y += kQkK) {
    const float d = fp16_to_fp32(x[i].d);
    for (int e = 0; e < kQkK; ++e) {
      const int h = e / 128;
      const int r = e % 128;  // r = 32 * quarter + l
      const int l = r % 32;
      const int quarter = r / 32;
      const uint8_t low_byte = x[i].ql[64 * h + 32 * (quarter % 2) + l];
      const int low = (low_byte >> (4 * (quarter / 2))) & 0xf;
      const int high = (x[i].qh[32 * h + l] >> (2 * quarter)) & 3;
      y[e] = d * x[i].scales[e / 16] * ((low | (high << 4)) - 32);
    }
  }
}

void dequantize_row_q8_k_ref(const BlockQ8_K* x, float* y, int64_t n) {
  assert(n % kQkK == 0);
  for (int64_t i = 0; i < n / kQkK; ++i, y += kQkK)
    for (int j = 0; j < kQkK; ++j) y[j] = x[i].d * x[i].qs[j];
}

}  // namespace loupe
