#include "sample/logprobs.h"

#include <algorithm>
#include <cmath>

namespace loupe::sample {
namespace {

constexpr double kVeryUnlikely = -9999.0;

bool more_likely(const TokenLogprob& a, const TokenLogprob& b) {
  return a.logprob != b.logprob ? a.logprob > b.logprob : a.token < b.token;
}

// Replaces bytes that do not form valid UTF-8 with U+FFFD so the JSON string is valid.
std::string valid_utf8(const std::string& s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const int n = c < 0x80             ? 0
                  : (c & 0xE0) == 0xC0 ? 1
                  : (c & 0xF0) == 0xE0 ? 2
                  : (c & 0xF8) == 0xF0 ? 3
                                       : -1;
    bool ok = n >= 0 && i + static_cast<size_t>(n) < s.size();
    for (int k = 1; ok && k <= n; ++k) {
      ok = (static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0xC0) == 0x80;
    }
    if (ok) {
      out.append(s, i, static_cast<size_t>(n) + 1);
      i += static_cast<size_t>(n) + 1;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

nlohmann::json entry(int32_t token, double logprob,
                     const std::function<std::string(int32_t)>& piece) {
  const std::string p = piece(token);
  nlohmann::json bytes = nlohmann::json::array();
  for (unsigned char c : p) bytes.push_back(static_cast<int>(c));
  return {{"id", token},
          {"token", valid_utf8(p)},
          {"logprob", std::isfinite(logprob) ? logprob : kVeryUnlikely},
          {"bytes", std::move(bytes)}};
}

}  // namespace

TokenLogprobs compute_logprobs(std::span<const float> logits, int32_t token, int32_t k,
                               const SampleResult* post) {
  TokenLogprobs out;
  out.token = token;
  const size_t n = logits.size();
  double max_l = -INFINITY;
  for (float x : logits) max_l = std::max(max_l, static_cast<double>(x));
  double sum = 0.0, weighted = 0.0;
  for (float x : logits) {
    if (x == -INFINITY) continue;
    const double e = std::exp(static_cast<double>(x) - max_l);
    sum += e;
    weighted += e * (static_cast<double>(x) - max_l);
  }
  const double log_z = max_l + std::log(sum);
  const auto lp = [&](int32_t id) {
    const float x = logits[static_cast<size_t>(id)];
    return x == -INFINITY ? -INFINITY : static_cast<double>(x) - log_z;
  };
  out.logprob = token >= 0 && static_cast<size_t>(token) < n ? lp(token) : -INFINITY;
  // H = log Z - E[x] with x shifted by max for stability.
  out.entropy = std::log(sum) - weighted / sum;

  const size_t n_top = std::min(static_cast<size_t>(std::max(k, 0)), n);
  if (n_top > 0) {
    // Keep a small heap of the best n_top (worst on top) in one pass over the vocabulary.
    std::vector<TokenLogprob> heap;
    heap.reserve(n_top + 1);
    for (size_t i = 0; i < n; ++i) {
      const TokenLogprob cand{static_cast<int32_t>(i), static_cast<double>(logits[i])};
      if (heap.size() < n_top) {
        heap.push_back(cand);
        std::push_heap(heap.begin(), heap.end(), more_likely);
      } else if (more_likely(cand, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), more_likely);
        heap.back() = cand;
        std::push_heap(heap.begin(), heap.end(), more_likely);
      }
    }
    std::sort(heap.begin(), heap.end(), more_likely);
    for (auto& e : heap) e.logprob = lp(e.token);
    out.top = std::move(heap);
  }
  if (post) {
    for (const auto& c : post->final_candidates) {
      if (c.id == token) out.post_prob = c.p;
    }
    for (size_t i = 0; i < post->final_candidates.size() && i < n_top; ++i) {
      const auto& c = post->final_candidates[i];
      out.post_top.push_back({c.id, c.p > 0.0f ? std::log(static_cast<double>(c.p)) : -INFINITY});
    }
  }
  return out;
}

nlohmann::json logprobs_to_json(const TokenLogprobs& lp,
                                const std::function<std::string(int32_t)>& piece) {
  nlohmann::json j = entry(lp.token, lp.logprob, piece);
  nlohmann::json top = nlohmann::json::array();
  for (const auto& t : lp.top) top.push_back(entry(t.token, t.logprob, piece));
  j["top_logprobs"] = std::move(top);
  j["entropy"] = lp.entropy;
  j["post_prob"] = lp.post_prob;
  nlohmann::json post_top = nlohmann::json::array();
  for (const auto& t : lp.post_top) post_top.push_back(entry(t.token, t.logprob, piece));
  j["post_top_logprobs"] = std::move(post_top);
  return j;
}

}  // namespace loupe::sample
