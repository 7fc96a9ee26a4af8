// bench/peak: compute ceilings of this CPU for the paths the matmul kernels use, per
// thread count (default 2): F32 FMA (AVX2 and AVX-512), BF16 dot (vdpbf16ps) and int8 dot
// (vpdpbusd, and AVX2's maddubs+madd) in multiply-adds per second. Each thread runs
// independent accumulator chains long enough to hide latency; paths the CPU lacks are
// skipped. The figures are what a kernel's "% of ceiling" is taken against.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

namespace {

constexpr long kIters = 20'000'000;

// 12 independent chains: more than latency × throughput on current cores.
#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx2,fma"))) double fma256() {
  __m256 b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-7f);
#define DECL(i) __m256 a##i = _mm256_set1_ps(static_cast<float>(i));
  CHAINS(DECL)
#undef DECL
  for (long it = 0; it < kIters; ++it) {
#define STEP(i) a##i = _mm256_fmadd_ps(a##i, b, c); __asm__ volatile("" : "+x"(a##i));
    CHAINS(STEP)
#undef STEP
  }
  float out[8];
  __m256 s = _mm256_setzero_ps();
#define SUM(i) s = _mm256_add_ps(s, a##i);
  CHAINS(SUM)
#undef SUM
  _mm256_storeu_ps(out, s);
  return out[0];
}

__attribute__((target("avx512f"))) double fma512() {
  __m512 b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
#define DECL(i) __m512 a##i = _mm512_set1_ps(static_cast<float>(i));
  CHAINS(DECL)
#undef DECL
  for (long it = 0; it < kIters; ++it) {
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, b, c); __asm__ volatile("" : "+v"(a##i));
    CHAINS(STEP)
#undef STEP
  }
  __m512 s = _mm512_setzero_ps();
#define SUM(i) s = _mm512_add_ps(s, a##i);
  CHAINS(SUM)
#undef SUM
  float out[16];
  _mm512_storeu_ps(out, s);
  return out[0];
}

__attribute__((target("avx512f,avx512bf16,avx512vl"))) double bf16_512() {
  const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80);
#define DECL(i) __m512 a##i = _mm512_set1_ps(static_cast<float>(i));
  CHAINS(DECL)
#undef DECL
  for (long it = 0; it < kIters; ++it) {
#define STEP(i) a##i = _mm512_dpbf16_ps(a##i, b, b); __asm__ volatile("" : "+v"(a##i));
    CHAINS(STEP)
#undef STEP
  }
  __m512 s = _mm512_setzero_ps();
#define SUM(i) s = _mm512_add_ps(s, a##i);
  CHAINS(SUM)
#undef SUM
  float out[16];
  _mm512_storeu_ps(out, s);
  return out[0];
}

__attribute__((target("avx512f,avx512vnni,avx512bw"))) double vnni512() {
  const __m512i b = _mm512_set1_epi8(1);
#define DECL(i) __m512i a##i = _mm512_set1_epi32(i);
  CHAINS(DECL)
#undef DECL
  for (long it = 0; it < kIters; ++it) {
#define STEP(i) a##i = _mm512_dpbusd_epi32(a##i, b, b); __asm__ volatile("" : "+v"(a##i));
    CHAINS(STEP)
#undef STEP
  }
  __m512i s = _mm512_setzero_si512();
#define SUM(i) s = _mm512_add_epi32(s, a##i);
  CHAINS(SUM)
#undef SUM
  int out[16];
  _mm512_storeu_si512(out, s);
  return out[0];
}

__attribute__((target("avx512f,avx512vnni,avx512vl"))) double vnni256() {
  const __m256i b = _mm256_set1_epi8(1);
#define DECL(i) __m256i a##i = _mm256_set1_epi32(i);
  CHAINS(DECL)
#undef DECL
  for (long it = 0; it < kIters; ++it) {
#define STEP(i) a##i = _mm256_dpbusd_epi32(a##i, b, b); __asm__ volatile("" : "+x"(a##i));
    CHAINS(STEP)
#undef STEP
  }
  __m256i s = _mm256_setzero_si256();
#define SUM(i) s = _mm256_add_epi32(s, a##i);
  CHAINS(SUM)
#undef SUM
  return _mm256_extract_epi32(s, 0);
}

__attribute__((target("avx2"))) double maddubs256() {
  const __m256i b = _mm256_set1_epi8(1), ones = _mm256_set1_epi16(1);
#define DECL(i) __m256i a##i = _mm256_set1_epi32(i);
  CHAINS(DECL)
#undef DECL
  for (long it = 0; it < kIters; ++it) {
#define STEP(i) a##i = _mm256_add_epi32(a##i, _mm256_madd_epi16(_mm256_maddubs_epi16(b, a##i), ones)); __asm__ volatile("" : "+x"(a##i));
    CHAINS(STEP)
#undef STEP
  }
  __m256i s = _mm256_setzero_si256();
#define SUM(i) s = _mm256_add_epi32(s, a##i);
  CHAINS(SUM)
#undef SUM
  return _mm256_extract_epi32(s, 0);
}

struct Path {
  const char* name;
  const char* unit;
  double macs_per_iter;  // multiply-adds of one loop iteration (12 instructions)
  bool available;
  double (*fn)();
};

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "-t") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: peak [-t THREADS=2]\n");
      return 2;
    }
  }
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const bool vnni = avx512 && __builtin_cpu_supports("avx512vnni");
  const bool bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
  const Path paths[] = {
      {"f32 fma avx2", "GFLOP/s", 12 * 8 * 2, __builtin_cpu_supports("fma") != 0, fma256},
      {"f32 fma avx512", "GFLOP/s", 12 * 16 * 2, avx512, fma512},
      {"bf16 dot avx512", "GFLOP/s", 12 * 32 * 2, bf16, bf16_512},
      {"int8 maddubs avx2", "GOP/s", 12 * 32 * 2, __builtin_cpu_supports("avx2") != 0, maddubs256},
      {"int8 vnni ymm", "GOP/s", 12 * 32 * 2, vnni, vnni256},
      {"int8 vnni zmm", "GOP/s", 12 * 64 * 2, vnni, vnni512},
  };
  std::printf("peak: %d threads\n", threads);
  for (const Path& p : paths) {
    if (!p.available) {
      std::printf("  %-20s %10s\n", p.name, "n/a");
      continue;
    }
    std::vector<std::thread> pool;
    std::vector<double> sink(threads);
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { sink[t] = p.fn(); });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double ops = p.macs_per_iter * static_cast<double>(kIters) * threads;
    std::printf("  %-20s %10.1f %s\n", p.name, ops / s / 1e9, p.unit);
  }
  return 0;
}
