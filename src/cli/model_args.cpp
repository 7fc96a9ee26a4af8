#include "model_args.h"

#include <charconv>

#include "tensor/dtype.h"

namespace loupe::cli {

Expected<std::vector<int32_t>> parse_token_list(const std::string& text) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    int32_t v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size() || v < 0)
      return make_error(ErrorCode::kInvalidArgument,
                        "--tokens: '{}' (item {}) is not a token id; expected comma-separated "
                        "non-negative integers like 1,450,29",
                        item, ids.size() + 1);
    ids.push_back(v);
    start = end + 1;
  }
  return ids;
}

Expected<DType> parse_cache_type(const std::string& text, const char* flag) {
  auto t = dtype_from_name(text);
  if (!t || (*t != DType::kF16 && *t != DType::kF32 && *t != DType::kQ8_0))
    return make_error(ErrorCode::kInvalidArgument, "{} {}: use f16 (default), f32 or q8_0", flag,
                      text);
  return *t;
}

int32_t argmax(const float* v, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (v[i] > v[best]) best = i;
  return static_cast<int32_t>(best);
}

Expected<runtime::RunParams> make_run_params(int n_threads, int64_t n_ctx,
                                             const std::string& cache_type_k,
                                             const std::string& cache_type_v) {
  runtime::RunParams params;
  params.n_threads = n_threads;
  params.n_ctx = n_ctx;
  LOUPE_ASSIGN_OR_RETURN(params.cache_type_k, parse_cache_type(cache_type_k, "--cache-type-k"));
  LOUPE_ASSIGN_OR_RETURN(params.cache_type_v, parse_cache_type(cache_type_v, "--cache-type-v"));
  return params;
}

}  // namespace loupe::cli
