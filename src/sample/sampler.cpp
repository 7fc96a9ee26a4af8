#include "sample/sampler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <unordered_map>

namespace loupe::sample {
namespace {

bool by_logit(const Candidate& a, const Candidate& b) {
  return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
}

bool by_prob(const Candidate& a, const Candidate& b) {
  return a.p != b.p ? a.p > b.p : a.id < b.id;
}

struct StageNameEntry {
  const char* name;
  SamplerStage stage;
};

// Canonical names first; aliases as llama.cpp's common_sampler_types_from_names derives them.
constexpr StageNameEntry kStageNames[] = {
    {"penalties", SamplerStage::kPenalties},
    {"dry", SamplerStage::kDry},
    {"top_n_sigma", SamplerStage::kTopNSigma},
    {"top_k", SamplerStage::kTopK},
    {"typ_p", SamplerStage::kTypicalP},
    {"top_p", SamplerStage::kTopP},
    {"min_p", SamplerStage::kMinP},
    {"xtc", SamplerStage::kXtc},
    {"temperature", SamplerStage::kTemperature},
    {"top-n-sigma", SamplerStage::kTopNSigma},
    {"topnsigma", SamplerStage::kTopNSigma},
    {"top-k", SamplerStage::kTopK},
    {"topk", SamplerStage::kTopK},
    {"typ-p", SamplerStage::kTypicalP},
    {"typp", SamplerStage::kTypicalP},
    {"typ", SamplerStage::kTypicalP},
    {"typical", SamplerStage::kTypicalP},
    {"typical-p", SamplerStage::kTypicalP},
    {"typical_p", SamplerStage::kTypicalP},
    {"top-p", SamplerStage::kTopP},
    {"topp", SamplerStage::kTopP},
    {"nucleus", SamplerStage::kTopP},
    {"min-p", SamplerStage::kMinP},
    {"minp", SamplerStage::kMinP},
    {"temp", SamplerStage::kTemperature},
};

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return std::string(s.substr(b, e - b));
}

uint32_t resolve_seed(uint32_t seed) {
  if (seed != kRandomSeed) return seed;
  std::random_device rd;
  if (rd.entropy() == 0) {
    return static_cast<uint32_t>(std::chrono::system_clock::now().time_since_epoch().count());
  }
  return rd();
}

// Greedy (temperature <= 0) keeps the first maximum and sets the rest to -inf, like
// llama_sampler_temp_impl; otherwise logits are divided by the temperature.
void apply_temperature(Candidates& c, float temp) {
  auto& d = c.data;
  if (d.empty()) return;
  if (temp <= 0.0f) {
    size_t max_i = 0;
    for (size_t i = 1; i < d.size(); ++i) {
      if (d[i].logit > d[max_i].logit) max_i = i;
    }
    for (size_t i = 0; i < d.size(); ++i) {
      if (i != max_i) d[i].logit = -INFINITY;
    }
    return;
  }
  for (auto& x : d) x.logit /= temp;
}

void apply_top_k(Candidates& c, int32_t k) {
  if (k <= 0) return;
  const size_t n = std::min(static_cast<size_t>(k), c.data.size());
  if (!c.sorted) {
    std::partial_sort(c.data.begin(), c.data.begin() + static_cast<ptrdiff_t>(n), c.data.end(),
                      by_logit);
  }
  c.data.resize(n);
  c.sorted = true;
}

void apply_top_p(Candidates& c, float p, size_t min_keep) {
  if (p >= 1.0f || c.data.empty()) return;
  softmax(c, false);
  auto& d = c.data;
  // Most of the mass usually sits in a few hundred tokens: sort those first.
  size_t n_sorted = d.size();
  if (!c.sorted && d.size() > 1024) {
    n_sorted = 256;
    std::partial_sort(d.begin(), d.begin() + 256, d.end(), by_logit);
  } else if (!c.sorted) {
    std::sort(d.begin(), d.end(), by_logit);
  }
  float cum = 0.0f;
  size_t last = d.size();
  for (size_t i = 0; i < d.size(); ++i) {
    if (i == n_sorted) {
      std::sort(d.begin() + static_cast<ptrdiff_t>(n_sorted), d.end(), by_logit);
      n_sorted = d.size();
    }
    cum += d[i].p;
    if (cum >= p && i + 1 >= min_keep) {
      last = i + 1;
      break;
    }
  }
  if (n_sorted < d.size() && last == d.size()) std::sort(d.begin(), d.end(), by_logit);
  d.resize(last);
  c.sorted = true;
}

void apply_min_p(Candidates& c, float p, size_t min_keep) {
  auto& d = c.data;
  if (p <= 0.0f || d.empty()) return;
  if (!c.sorted) {
    float max_logit = -INFINITY;
    for (const auto& x : d) max_logit = std::max(max_logit, x.logit);
    const float min_logit = max_logit + std::log(p);  // p_i >= p * p_max
    std::vector<Candidate> kept;
    for (const auto& x : d) {
      if (x.logit >= min_logit) kept.push_back(x);
    }
    if (!kept.empty() && kept.size() >= min_keep) {
      d = std::move(kept);
      return;
    }
    std::sort(d.begin(), d.end(), by_logit);
    c.sorted = true;
  }
  const float min_logit = d[0].logit + std::log(p);
  size_t i = 1;
  for (; i < d.size(); ++i) {
    if (d[i].logit < min_logit && i >= min_keep) break;
  }
  d.resize(i);
}

// Locally typical sampling (Meister et al. 2022): keep the tokens whose surprise is closest to
// the entropy until their mass exceeds p.
void apply_typical(Candidates& c, float p, size_t min_keep) {
  if (p >= 1.0f || c.data.empty()) return;
  softmax(c, true);
  auto& d = c.data;
  float entropy = 0.0f;
  for (const auto& x : d) {
    if (x.p > 0.0f) entropy -= x.p * std::log(x.p);
  }
  std::vector<float> shifted(d.size());
  for (size_t i = 0; i < d.size(); ++i) shifted[i] = std::fabs(-std::log(d[i].p) - entropy);
  std::vector<size_t> idx(d.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](size_t a, size_t b) { return shifted[a] < shifted[b]; });
  float cum = 0.0f;
  size_t last = idx.size();
  for (size_t i = 0; i < idx.size(); ++i) {
    cum += d[idx[i]].p;
    if (cum > p && (min_keep == 0 || i >= min_keep - 1)) {
      last = i + 1;
      break;
    }
  }
  std::vector<Candidate> kept;
  kept.reserve(last);
  for (size_t i = 0; i < last; ++i) kept.push_back(d[idx[i]]);
  d = std::move(kept);
  c.sorted = false;
}

// Top-nσ (Tang et al. 2024): keep logits within n standard deviations of the maximum.
void apply_top_n_sigma(Candidates& c, float n) {
  auto& d = c.data;
  if (n <= 0.0f || d.size() <= 1) return;
  float max = d[0].logit;
  float sum = 0.0f;
  size_t count = 0;
  for (const auto& x : d) {
    if (x.logit != -INFINITY) {
      max = std::max(max, x.logit);
      sum += x.logit;
      ++count;
    }
  }
  const float mean = count > 0 ? sum / static_cast<float>(count) : 0.0f;
  float acc = 0.0f;
  for (const auto& x : d) {
    if (x.logit != -INFINITY) acc += (x.logit - mean) * (x.logit - mean);
  }
  const float sd = count > 0 ? std::sqrt(acc / static_cast<float>(count)) : 0.0f;
  for (auto& x : d) {
    if (x.logit < max - n * sd) x.logit = -INFINITY;
  }
  softmax(c, true);
}

// Dynamic temperature (llama_sampler_temp_ext): entropy-scaled temperature in
// [temp - range, temp + range].
void apply_dynatemp(Candidates& c, float temp, float range, float exponent) {
  if (range <= 0.0f) {
    apply_temperature(c, temp);
    return;
  }
  auto& d = c.data;
  if (d.size() <= 1) return;
  const float min_temp = std::max(0.0f, temp - range);
  const float max_temp = temp + range;
  const float max_entropy = -std::log(1.0f / static_cast<float>(d.size()));
  softmax(c, true);
  float entropy = 0.0f;
  for (const auto& x : d) {
    if (x.p > 0.0f) entropy -= x.p * std::log(x.p);
  }
  const float normalized = entropy / max_entropy;
  const float dyn_temp = min_temp + (max_temp - min_temp) * std::pow(normalized, exponent);
  apply_temperature(c, dyn_temp);
  const double max_l = d[0].logit;
  double sum = 0.0;
  for (auto& x : d) {
    const double e = std::exp(x.logit - max_l);
    x.p = static_cast<float>(e);
    sum += e;
  }
  for (auto& x : d) x.p = static_cast<float>(x.p / sum);
}

void record(std::vector<StageRecord>& out, const char* name, const Candidates& c, int32_t top) {
  StageRecord r;
  r.name = name;
  double max_l = -INFINITY;
  for (const auto& x : c.data) max_l = std::max(max_l, static_cast<double>(x.logit));
  double sum = 0.0;
  for (const auto& x : c.data) {
    if (x.logit != -INFINITY) sum += std::exp(x.logit - max_l);
  }
  for (const auto& x : c.data) {
    if (x.logit == -INFINITY || !(sum > 0.0)) continue;
    r.candidates.push_back({x.id, x.logit, static_cast<float>(std::exp(x.logit - max_l) / sum)});
  }
  if (top > 0 && r.candidates.size() > static_cast<size_t>(top)) {
    std::partial_sort(r.candidates.begin(), r.candidates.begin() + top, r.candidates.end(),
                      by_prob);
    r.candidates.resize(static_cast<size_t>(top));
  } else {
    std::sort(r.candidates.begin(), r.candidates.end(), by_prob);
  }
  out.push_back(std::move(r));
}

}  // namespace

const char* stage_name(SamplerStage stage) {
  for (const auto& e : kStageNames) {
    if (e.stage == stage) return e.name;
  }
  return "?";
}

std::vector<SamplerStage> default_sampler_order() {
  return {SamplerStage::kPenalties, SamplerStage::kDry,      SamplerStage::kTopNSigma,
          SamplerStage::kTopK,      SamplerStage::kTypicalP, SamplerStage::kTopP,
          SamplerStage::kMinP,      SamplerStage::kXtc,      SamplerStage::kTemperature};
}

Expected<std::vector<SamplerStage>> parse_sampler_order(std::string_view text) {
  std::vector<SamplerStage> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find_first_of(";,", start);
    if (end == std::string_view::npos) end = text.size();
    std::string name = trim(text.substr(start, end - start));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (!name.empty()) {
      bool found = false;
      for (const auto& e : kStageNames) {
        if (name == e.name) {
          out.push_back(e.stage);
          found = true;
          break;
        }
      }
      if (!found) {
        return make_error(ErrorCode::kInvalidArgument,
                          "--samplers: unknown sampler '{}'; valid: penalties, dry, top_n_sigma, "
                          "top_k, typ_p, top_p, min_p, xtc, temperature (separated by ';')",
                          name);
      }
    }
    start = end + 1;
  }
  return out;
}

std::string sampler_order_string(std::span<const SamplerStage> stages) {
  std::string out;
  for (SamplerStage s : stages) {
    if (!out.empty()) out += ';';
    out += stage_name(s);
  }
  return out;
}

void sort_candidates(Candidates& c) {
  if (!c.sorted) std::sort(c.data.begin(), c.data.end(), by_logit);
  c.sorted = true;
}

void softmax(Candidates& c, bool sort) {
  auto& d = c.data;
  if (d.empty()) return;
  if (sort) sort_candidates(c);
  float max_l = d[0].logit;
  if (!c.sorted) {
    for (const auto& x : d) max_l = std::max(max_l, x.logit);
  }
  float sum = 0.0f;
  for (auto& x : d) {
    x.p = std::exp(x.logit - max_l);
    sum += x.p;
  }
  for (auto& x : d) x.p /= sum;
}

Expected<SamplerChain> SamplerChain::create(const SamplerParams& params, const ChainSetup& setup) {
  if (setup.n_vocab <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "sampler: n_vocab must be positive (got {})",
                      setup.n_vocab);
  }
  if (setup.vocab && setup.vocab->n_vocab() != setup.n_vocab) {
    return make_error(ErrorCode::kInvalidArgument,
                      "sampler: the token vocabulary has {} entries but the model has {}",
                      setup.vocab->n_vocab(), setup.n_vocab);
  }
  if (params.mirostat < 0 || params.mirostat > 2) {
    return make_error(ErrorCode::kInvalidArgument, "--mirostat must be 0, 1 or 2 (got {})",
                      params.mirostat);
  }
  if (params.penalty_last_n < -1) {
    return make_error(ErrorCode::kInvalidArgument, "--repeat-last-n must be >= -1 (got {})",
                      params.penalty_last_n);
  }
  if (params.dry_penalty_last_n < -1) {
    return make_error(ErrorCode::kInvalidArgument, "--dry-penalty-last-n must be >= -1 (got {})",
                      params.dry_penalty_last_n);
  }
  if (params.min_keep < 0) {
    return make_error(ErrorCode::kInvalidArgument, "min_keep must be >= 0 (got {})",
                      params.min_keep);
  }
  for (const auto& b : params.logit_bias) {
    if (b.token < 0 || b.token >= setup.n_vocab) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--logit-bias: token {} is outside the vocabulary (0..{})", b.token,
                        setup.n_vocab - 1);
    }
  }
  if (params.ignore_eos && !setup.vocab) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "--ignore-eos needs the vocabulary's end-of-generation tokens (ChainSetup::vocab)");
  }
  if (setup.grammar && !setup.vocab) {
    return make_error(ErrorCode::kInvalidArgument,
                      "a grammar needs the token pieces (ChainSetup::vocab)");
  }
  SamplerChain chain;
  chain.params_ = params;
  chain.setup_ = setup;
  chain.seed_ = resolve_seed(params.seed);
  chain.penalty_last_n_ = params.penalty_last_n == -1 ? setup.n_ctx : params.penalty_last_n;
  chain.dry_last_n_ = params.dry_penalty_last_n == -1 ? setup.n_ctx : params.dry_penalty_last_n;
  chain.token_count_.assign(static_cast<size_t>(setup.n_vocab), 0);
  if (setup.grammar) chain.grammar_ = std::make_unique<GrammarMatcher>(setup.grammar, setup.vocab);
  chain.process_breakers();
  chain.reset();
  return chain;
}

void SamplerChain::reset() {
  rng_dist_.seed(seed_);
  rng_xtc_.seed(seed_);
  rng_mirostat_.seed(seed_);
  mirostat_mu_ = 2.0f * params_.mirostat_tau;
  history_.clear();
  std::fill(token_count_.begin(), token_count_.end(), 0);
  if (grammar_) grammar_->reset();
}

// Sequence breakers (Koboldcpp's DRY, as llama.cpp builds them): a token whose piece contains a
// breaker is a single-token breaker; a token whose piece ends with a proper prefix of a breaker
// starts a multi-token one whose tail is the tokenized rest (at most 20 tokens).
void SamplerChain::process_breakers() {
  dry_breakers_.clear();
  const bool enabled =
      params_.dry_multiplier != 0.0f && params_.dry_base >= 1.0f && params_.dry_penalty_last_n != 0;
  if (!enabled || !setup_.vocab) return;
  constexpr size_t kMaxBreakerChars = 40;
  constexpr size_t kMaxTailTokens = 20;
  for (std::string breaker : params_.dry_sequence_breakers) {
    if (breaker.empty()) continue;
    if (breaker.size() > kMaxBreakerChars) breaker.resize(kMaxBreakerChars);
    for (int32_t id = 0; id < setup_.vocab->n_vocab(); ++id) {
      const std::string& word = setup_.vocab->piece(id);
      if (word.find(breaker) != std::string::npos) {
        dry_breakers_.push_back({id, {}});
        continue;
      }
      for (size_t pos = word.find(breaker[0]); pos != std::string::npos;
           pos = word.find(breaker[0], pos + 1)) {
        size_t i = 1;
        bool match = true;
        for (; i < breaker.size() && pos + i < word.size(); ++i) {
          if (word[pos + i] != breaker[i]) {
            match = false;
            break;
          }
        }
        if (!match || !setup_.tokenize) continue;
        std::vector<int32_t> tail = setup_.tokenize(breaker.substr(i));
        if (tail.size() > kMaxTailTokens) tail.resize(kMaxTailTokens);
        bool dup = false;
        for (const auto& [head, t] : dry_breakers_) dup = dup || (head == id && t == tail);
        if (!dup) dry_breakers_.push_back({id, std::move(tail)});
      }
    }
  }
  std::stable_sort(dry_breakers_.begin(), dry_breakers_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
}

Status SamplerChain::accept(int32_t token, bool is_generated) {
  if (token < 0 || token >= setup_.n_vocab) {
    return make_error(ErrorCode::kInvalidArgument, "token {} is outside the vocabulary (0..{})",
                      token, setup_.n_vocab - 1);
  }
  if (is_generated && grammar_) LOUPE_TRY(grammar_->accept(token));
  history_.push_back(token);
  if (penalty_last_n_ > 0) {
    ++token_count_[static_cast<size_t>(token)];
    if (history_.size() > static_cast<size_t>(penalty_last_n_)) {
      --token_count_[static_cast<size_t>(
          history_[history_.size() - 1 - static_cast<size_t>(penalty_last_n_)])];
    }
  }
  // Keep what the penalty window and DRY can look at, trimming in amortised O(1).
  const size_t keep = static_cast<size_t>(std::max({penalty_last_n_, dry_last_n_, 1})) + 1;
  if (history_.size() > 2 * keep + 1024) {
    history_.erase(history_.begin(), history_.end() - static_cast<ptrdiff_t>(keep));
  }
  return Status();
}

void SamplerChain::apply_penalties(Candidates& c) const {
  if (penalty_last_n_ == 0 || (params_.penalty_repeat == 1.0f && params_.penalty_freq == 0.0f &&
                               params_.penalty_present == 0.0f)) {
    return;
  }
  for (auto& x : c.data) {
    const int32_t count = token_count_[static_cast<size_t>(x.id)];
    if (count == 0) continue;
    // Dividing a negative logit would make the token more likely: multiply those instead
    // (the CTRL paper's rule as llama.cpp fixes it).
    if (x.logit <= 0) {
      x.logit *= params_.penalty_repeat;
    } else {
      x.logit /= params_.penalty_repeat;
    }
    x.logit -= static_cast<float>(count) * params_.penalty_freq +
               static_cast<float>(count > 0) * params_.penalty_present;
  }
  c.sorted = false;
}

// DRY ("Don't Repeat Yourself", Koboldcpp PR 982): penalise a token by
// multiplier * base^(n - allowed_length) when emitting it would extend a repeat of length n.
void SamplerChain::apply_dry(Candidates& c) {
  if (params_.dry_multiplier == 0.0f || params_.dry_base < 1.0f ||
      params_.dry_penalty_last_n == 0) {
    return;
  }
  const int last_n = std::min({static_cast<int>(history_.size()), dry_last_n_, setup_.n_ctx});
  if (last_n <= params_.dry_allowed_length) return;
  // rat(i): the i-th most recent token.
  const auto rat = [&](int i) { return history_[history_.size() - 1 - static_cast<size_t>(i)]; };
  const auto breakers_of = [&](int32_t token) {
    auto lo = std::lower_bound(dry_breakers_.begin(), dry_breakers_.end(), token,
                               [](const auto& e, int32_t t) { return e.first < t; });
    auto hi = lo;
    while (hi != dry_breakers_.end() && hi->first == token) ++hi;
    return std::make_pair(lo, hi);
  };

  // 1. The most recent sequence breaker limits how far back a repeat may reach.
  int rep_limit = last_n;
  for (int i = 0; i < last_n; ++i) {
    auto [lo, hi] = breakers_of(rat(i));
    if (lo == hi) continue;
    int longest = -1;
    for (auto it = lo; it != hi; ++it) {
      const int len = static_cast<int>(it->second.size());
      if (len <= longest || len > i) continue;
      bool match = true;
      for (int k = 0; k < len && match; ++k)
        match = it->second[static_cast<size_t>(k)] == rat(i - k - 1);
      if (match) longest = len;
    }
    if (longest >= 0) {
      rep_limit = i - longest;
      break;
    }
  }
  if (rep_limit < params_.dry_allowed_length) return;

  // 2. Z-algorithm over the reversed context: repeat[last - k] = length of the suffix of the
  // context that also ends k tokens earlier (capped by rep_limit).
  std::vector<int> repeat(static_cast<size_t>(last_n), 0);
  {
    const int last = last_n - 1;
    int lt = 0, rt = 0;
    for (int k = 1; k < last_n; ++k) {
      if (k > rt) {
        int n = 0;
        while (n + k < last_n && rat(n) == rat(n + k)) ++n;
        repeat[static_cast<size_t>(last - k)] = std::min(n, rep_limit);
        if (n > 0) {
          lt = k;
          rt = k + n - 1;
        }
      } else {
        const int p = k - lt;
        const int right_len = rt - k + 1;
        if (repeat[static_cast<size_t>(last - p)] < right_len) {
          repeat[static_cast<size_t>(last - k)] =
              std::min(repeat[static_cast<size_t>(last - p)], rep_limit);
        } else {
          int i = rt + 1;
          while (i < last_n && rat(i) == rat(i - k)) ++i;
          repeat[static_cast<size_t>(last - k)] = std::min(i - k, rep_limit);
          lt = k;
          rt = i - 1;
        }
      }
    }
  }

  // 3. The token after each repeat would extend it: keep the longest per token.
  std::unordered_map<int32_t, int> max_repeat;
  for (int i = 0; i < last_n - 1; ++i) {
    const int len = repeat[static_cast<size_t>(i)];
    if (len < params_.dry_allowed_length) continue;
    const int32_t token = rat(last_n - 2 - i);
    auto [it, inserted] = max_repeat.emplace(token, len);
    if (!inserted && it->second < len) it->second = len;
  }
  if (max_repeat.empty()) return;

  // 4. Penalise, clamping the exponent so that base^exp stays finite in float.
  constexpr float kFloatMaxLog = 88.7228391f;
  int max_exponent = 0;
  if (params_.dry_base > 1.000001f)
    max_exponent = static_cast<int>(kFloatMaxLog / std::log(params_.dry_base));
  for (auto& x : c.data) {
    auto it = max_repeat.find(x.id);
    if (it == max_repeat.end()) continue;
    auto [lo, hi] = breakers_of(x.id);
    bool single_breaker = false;
    for (auto b = lo; b != hi; ++b) single_breaker = single_breaker || b->second.empty();
    if (single_breaker) continue;
    int exponent = it->second - params_.dry_allowed_length;
    if (max_exponent > 0 && exponent > max_exponent) exponent = max_exponent;
    x.logit -= params_.dry_multiplier * std::pow(params_.dry_base, static_cast<float>(exponent));
  }
  c.sorted = false;
}

// XTC, "exclude top choices" (p-e-w, text-generation-webui PR 6335): with probability
// xtc_probability, drop every token above the threshold except the least likely of them.
void SamplerChain::apply_xtc(Candidates& c) {
  if (params_.xtc_probability <= 0.0f || params_.xtc_threshold > 0.5f || c.data.size() < 2) return;
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  if (uniform(rng_xtc_) > params_.xtc_probability) return;
  softmax(c, true);
  size_t pos_last = 0;
  for (size_t i = 0; i < c.data.size(); ++i) {
    if (c.data[i].p >= params_.xtc_threshold) {
      pos_last = i;
    } else {
      break;
    }
  }
  if (c.data.size() - pos_last >= static_cast<size_t>(params_.min_keep) && pos_last > 0) {
    c.data.erase(c.data.begin(), c.data.begin() + static_cast<ptrdiff_t>(pos_last));
  }
}

void SamplerChain::apply_stage(SamplerStage stage, Candidates& c) {
  const size_t min_keep = static_cast<size_t>(params_.min_keep);
  switch (stage) {
    case SamplerStage::kPenalties:
      apply_penalties(c);
      break;
    case SamplerStage::kDry:
      apply_dry(c);
      break;
    case SamplerStage::kTopNSigma:
      apply_top_n_sigma(c, params_.top_n_sigma);
      break;
    case SamplerStage::kTopK:
      apply_top_k(c, params_.top_k);
      break;
    case SamplerStage::kTypicalP:
      apply_typical(c, params_.typ_p, min_keep);
      break;
    case SamplerStage::kTopP:
      apply_top_p(c, params_.top_p, min_keep);
      break;
    case SamplerStage::kMinP:
      apply_min_p(c, params_.min_p, min_keep);
      break;
    case SamplerStage::kXtc:
      apply_xtc(c);
      break;
    case SamplerStage::kTemperature:
      apply_dynatemp(c, params_.temp, params_.dynatemp_range, params_.dynatemp_exponent);
      break;
    case SamplerStage::kCount:
      break;
  }
}

// llama_sampler_dist: softmax and one uniform draw in a single pass.
int32_t SamplerChain::select_dist(Candidates& c) {
  auto& d = c.data;
  if (d.size() == 1) {
    d[0].p = 1.0f;
    return 0;
  }
  float max_l = d[0].logit;
  if (!c.sorted) {
    for (const auto& x : d) max_l = std::max(max_l, x.logit);
  }
  double sum = 0.0;
  for (auto& x : d) {
    x.p = std::exp(x.logit - max_l);
    sum += x.p;
  }
  if (!(sum > 0.0) || !std::isfinite(sum)) return -1;
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const double target = sum * uniform(rng_dist_);
  double run = 0.0;
  int32_t selected = -1;
  for (size_t i = 0; i < d.size(); ++i) {
    if (selected < 0) {
      run += d[i].p;
      if (run >= target) selected = static_cast<int32_t>(i);
    }
    d[i].p = static_cast<float>(d[i].p / sum);
  }
  if (selected < 0) selected = static_cast<int32_t>(d.size()) - 1;
  return selected;
}

namespace {

int32_t draw(const Candidates& c, std::mt19937& rng) {
  std::vector<float> probs(c.data.size());
  for (size_t i = 0; i < probs.size(); ++i) probs[i] = c.data[i].p;
  std::discrete_distribution<int32_t> dist(probs.begin(), probs.end());
  return dist(rng);
}

}  // namespace

// Mirostat (Basu et al. 2021, algorithm 1) with m = 100, as llama.cpp.
int32_t SamplerChain::select_mirostat(Candidates& c) {
  softmax(c, true);
  auto& d = c.data;
  constexpr int kM = 100;
  float sum_ti_bi = 0.0f, sum_ti_sq = 0.0f;
  for (size_t i = 0; i + 1 < static_cast<size_t>(kM) && i + 1 < d.size(); ++i) {
    const float t_i = std::log(static_cast<float>(i + 2) / static_cast<float>(i + 1));
    const float b_i = std::log(d[i].p / d[i + 1].p);
    sum_ti_bi += t_i * b_i;
    sum_ti_sq += t_i * t_i;
  }
  const float s_hat = sum_ti_bi / sum_ti_sq;
  const float epsilon_hat = s_hat - 1;
  const float k = std::pow((epsilon_hat * std::pow(2.0f, mirostat_mu_)) /
                               (1 - std::pow(static_cast<float>(setup_.n_vocab), -epsilon_hat)),
                           1 / s_hat);
  apply_top_k(c, std::max(static_cast<int32_t>(k), 1));
  softmax(c, true);
  const int32_t idx = draw(c, rng_mirostat_);
  const float observed = -std::log2(d[static_cast<size_t>(idx)].p);
  mirostat_mu_ -= params_.mirostat_eta * (observed - params_.mirostat_tau);
  return idx;
}

// Mirostat 2.0: truncate tokens whose surprise exceeds mu, then draw.
int32_t SamplerChain::select_mirostat_v2(Candidates& c) {
  softmax(c, true);
  auto& d = c.data;
  size_t n = 0;
  while (n < d.size() && !(-std::log2(d[n].p) > mirostat_mu_)) ++n;
  d.resize(std::max<size_t>(n, 1));
  softmax(c, true);
  const int32_t idx = draw(c, rng_mirostat_);
  const float observed = -std::log2(d[static_cast<size_t>(idx)].p);
  mirostat_mu_ -= params_.mirostat_eta * (observed - params_.mirostat_tau);
  return idx;
}

Status SamplerChain::run_chain(std::span<const float> logits, const SampleOptions& options,
                               bool with_grammar, SampleResult& result) {
  Candidates c;
  c.data.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    c.data[i] = {static_cast<int32_t>(i), logits[i], 0.0f};
  }
  auto& stages = result.stages;
  const bool rec = options.record_stages;
  if (rec) record(stages, "logits", c, options.record_top);
  if (!params_.logit_bias.empty() || params_.ignore_eos) {
    for (const auto& b : params_.logit_bias) c.data[static_cast<size_t>(b.token)].logit += b.bias;
    if (params_.ignore_eos) {
      for (int32_t id : setup_.vocab->eog_ids()) c.data[static_cast<size_t>(id)].logit = -INFINITY;
    }
    if (rec) record(stages, "logit_bias", c, options.record_top);
  }
  if (with_grammar) {
    LOUPE_TRY(grammar_->filter(c, options.n_remaining));
    if (rec) record(stages, "grammar", c, options.record_top);
  }
  int32_t idx = -1;
  if (params_.mirostat == 0) {
    for (SamplerStage s : params_.samplers) {
      apply_stage(s, c);
      if (rec) record(stages, stage_name(s), c, options.record_top);
    }
    if (!c.data.empty()) idx = select_dist(c);
  } else {
    apply_temperature(c, params_.temp);
    if (rec) record(stages, "temperature", c, options.record_top);
    if (!c.data.empty()) {
      idx = params_.mirostat == 1 ? select_mirostat(c) : select_mirostat_v2(c);
    }
  }
  if (idx < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "sampler: no token has a non-zero probability after the sampler stages "
                      "(are all tokens banned by --logit-bias?)");
  }
  result.token = c.data[static_cast<size_t>(idx)].id;
  result.prob = c.data[static_cast<size_t>(idx)].p;
  result.final_candidates.clear();
  for (const auto& x : c.data) {
    if (x.p > 0.0f) result.final_candidates.push_back(x);
  }
  std::sort(result.final_candidates.begin(), result.final_candidates.end(), by_prob);
  if (rec) {
    StageRecord r{
        params_.mirostat == 0 ? "dist" : (params_.mirostat == 1 ? "mirostat" : "mirostat_v2"),
        result.final_candidates};
    if (options.record_top > 0 && r.candidates.size() > static_cast<size_t>(options.record_top)) {
      r.candidates.resize(static_cast<size_t>(options.record_top));
    }
    stages.push_back(std::move(r));
  }
  return Status();
}

Expected<SampleResult> SamplerChain::sample(std::span<const float> logits,
                                            const SampleOptions& options) {
  if (static_cast<int64_t>(logits.size()) != setup_.n_vocab) {
    return make_error(ErrorCode::kInvalidArgument, "sampler: got {} logits for a vocabulary of {}",
                      logits.size(), setup_.n_vocab);
  }
  SampleResult result;
  if (!grammar_ || options.grammar_first) {
    LOUPE_TRY(run_chain(logits, options, grammar_ != nullptr, result));
    return result;
  }
  // llama.cpp's common_sampler_sample: draw without the grammar, keep the token if the grammar
  // accepts it, otherwise draw again with the grammar applied first.
  LOUPE_TRY(run_chain(logits, options, false, result));
  if (grammar_->allows(result.token, options.n_remaining)) return result;
  SampleResult again;
  again.grammar_resampled = true;
  LOUPE_TRY(run_chain(logits, options, true, again));
  return again;
}

std::string SamplerChain::describe() const {
  std::string out = "logits";
  if (!params_.logit_bias.empty() || params_.ignore_eos) out += " -> logit_bias";
  if (grammar_) out += " -> grammar";
  if (params_.mirostat != 0) {
    return out + " -> temperature -> " + (params_.mirostat == 1 ? "mirostat" : "mirostat_v2");
  }
  for (SamplerStage s : params_.samplers) out += std::string(" -> ") + stage_name(s);
  return out + " -> dist";
}

}  // namespace loupe::sample
