// Command-line pieces shared by the commands that run a model (logits, run).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "runtime/session.h"

namespace loupe::cli {

// "1,2,3" -> ids; errors name the bad item.
Expected<std::vector<int32_t>> parse_token_list(const std::string& text);
// "f16" / "f32" / "q8_0" (case-insensitive) -> cache type.
Expected<DType> parse_cache_type(const std::string& text, const char* flag);
// RunParams from the shared flags -t, -c and --cache-type-k/-v; errors name the bad flag.
Expected<runtime::RunParams> make_run_params(int n_threads, int64_t n_ctx,
                                             const std::string& cache_type_k,
                                             const std::string& cache_type_v);
// Index of the largest value, the lowest index on ties.
int32_t argmax(const float* v, int64_t n);

}  // namespace loupe::cli
