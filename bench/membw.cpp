// bench/membw: the read-bandwidth ceiling of this machine, the figure a memory-bound
// decode step is measured against. T threads (default 2) each sum their share of an array
// far beyond the last-level cache (default 1 GiB), several rounds; prints the median and
// best GB/s. AVX2 loads when the CPU has them (compiled with -mavx2), so the figure is what
// a vectorized kernel can reach, not a scalar loop's; and each thread requests the lines 4 KiB
// ahead of its loads, as the GEMV kernels do: on the VMs measured here that reads ~25% faster
// than the hardware prefetcher alone (--no-prefetch measures that).
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

bool g_prefetch = true;
constexpr size_t kAhead = 1024;  // floats: 4 KiB

double sum_range(const float* p, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    if (g_prefetch) {  // past the end never faults
      _mm_prefetch(reinterpret_cast<const char*>(p + i + kAhead), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p + i + kAhead + 16), _MM_HINT_T0);
    }
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  float out[8];
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  double s = 0;
  for (float v : out) s += v;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  size_t mib = 1024;
  int rounds = 10;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "-t") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "-s") && i + 1 < argc) mib = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "-r") && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--no-prefetch")) g_prefetch = false;
    else {
      std::fprintf(stderr,
                   "usage: membw [-t THREADS=2] [-s MIB=1024] [-r ROUNDS=10] [--no-prefetch]\n");
      return 2;
    }
  }
  const size_t n = mib * 1024 * 1024 / sizeof(float);
  float* data = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  if (data == nullptr) return 1;
  // Touch every page from the thread that will read it (first-touch placement).
  std::vector<std::thread> pool;
  const size_t share = n / threads / 32 * 32;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (size_t i = t * share; i < (t + 1) * share; ++i) data[i] = 1.0f;
    });
  for (auto& th : pool) th.join();
  std::vector<double> gbs;
  volatile double sink = 0;
  for (int r = 0; r < rounds; ++r) {
    pool.clear();
    std::vector<double> partial(threads);
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] { partial[t] = sum_range(data + t * share, share); });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (double p : partial) sink = sink + p;
    gbs.push_back(static_cast<double>(share * threads * sizeof(float)) / s / 1e9);
  }
  std::sort(gbs.begin(), gbs.end());
  std::printf("membw: %d threads, %zu MiB, %d rounds%s: median %.1f GB/s, best %.1f GB/s\n",
              threads, mib, rounds, g_prefetch ? "" : " (no software prefetch)",
              gbs[gbs.size() / 2], gbs.back());
  std::free(data);
  return 0;
}
