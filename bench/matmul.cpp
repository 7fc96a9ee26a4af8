// bench/matmul: one weight matrix of a given type and shape, multiplied by 1 token (GEMV,
// reported in GB/s of weights read) and by a batch (GEMM, in GOP/s: 2·n_in·n_out·tokens),
// on the dispatch level in use (LOUPE_ISA forces one), with the weights repacked as a model
// load does (LOUPE_NO_REPACK=1: as stored). For kernel work; `loupe bench` and
// bench/compare.sh measure whole models.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/matmul.h"
#include "simd/cpu.h"
#include "tensor/quant.h"

using namespace loupe;

int main(int argc, char** argv) {
  std::string type_name = "q4_0";
  int64_t n_in = 2048, n_out = 5632, batch = 512;
  int threads = 2, rounds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--type")) type_name = argv[i + 1];
    else if (!std::strcmp(argv[i], "--n-in")) n_in = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--n-out")) n_out = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--batch")) batch = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "-t")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "-r")) rounds = std::atoi(argv[i + 1]);
  }
  const DType type = dtype_from_name(type_name).value_or(DType::kCount);
  if (type == DType::kCount || !kernels::matmul_supports(type)) {
    std::fprintf(stderr, "usage: matmul --type q4_0|q8_0|q4_k|q6_k|f16|bf16|... [--n-in N] "
                         "[--n-out N] [--batch N] [-t THREADS] [-r ROUNDS]\n");
    return 2;
  }
  // Enough copies of the matrix that GEMV streams from memory, not cache.
  const size_t row = dtype_row_size(type, n_in);
  const size_t bytes = row * static_cast<size_t>(n_out);
  const int copies = static_cast<int>(std::max<size_t>(1, (512ull << 20) / bytes));
  std::vector<uint8_t> weights(bytes * static_cast<size_t>(copies));
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> wf(static_cast<size_t>(n_in));
  for (int64_t r = 0; r < n_out; ++r) {
    for (float& v : wf) v = dist(rng);
    quantize_row_ref(type, wf.data(), weights.data() + static_cast<size_t>(r) * row, n_in);
  }
  for (int c = 1; c < copies; ++c) std::memcpy(weights.data() + c * bytes, weights.data(), bytes);
  kernels::PackedWeights packed;
  for (int c = 0; c < copies; ++c)
    packed.add({type, weights.data() + c * bytes, n_in, n_out, row, nullptr});
  std::vector<float> x(static_cast<size_t>(n_in * batch)), y(static_cast<size_t>(n_out * batch));
  for (float& v : x) v = dist(rng);
  ThreadPool pool(threads);
  auto median_seconds = [&](int64_t n_tokens, int reps) {
    std::vector<double> s;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      const int k = n_tokens == 1 ? copies : 1;
      for (int c = 0; c < k; ++c) {
        kernels::Matrix m{type, weights.data() + c * bytes, n_in, n_out, row, nullptr};
        kernels::matmul(pool, m, x.data(), n_tokens, y.data());
      }
      s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / k);
    }
    std::sort(s.begin(), s.end());
    return s[s.size() / 2];
  };
  median_seconds(1, 1);
  const double gemv = median_seconds(1, rounds * 4);
  const double gemm = batch > 1 ? median_seconds(batch, rounds) : 0.0;
  std::printf("%s %s%s [%lld x %lld], %d threads: GEMV %.1f GB/s (%.3f ms)", std::string(simd::isa_name(simd::active_isa())).c_str(),
              std::string(dtype_name(type)).c_str(), packed.bytes() > 0 ? " (repacked)" : "",
              static_cast<long long>(n_out),
              static_cast<long long>(n_in), threads, static_cast<double>(bytes) / gemv / 1e9, gemv * 1e3);
  if (batch > 1)
    std::printf(", GEMM x%lld %.1f GOP/s (%.1f ms)", static_cast<long long>(batch),
                2.0 * static_cast<double>(n_in * n_out * batch) / gemm / 1e9, gemm * 1e3);
  std::printf("\n");
  return 0;
}
