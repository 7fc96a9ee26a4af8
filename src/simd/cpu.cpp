#include "simd/cpu.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// The one place that asks the hardware: cpuid is x86-only, other targets report no
// features and run the scalar kernels.
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define LOUPE_SIMD_X86 1
#endif

namespace loupe::simd {
namespace {

#if LOUPE_SIMD_X86
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if LOUPE_SIMD_X86
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1;
  const bool avx = (c >> 28) & 1;
  f.fma = (c >> 12) & 1;
  f.f16c = (c >> 29) & 1;
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;
  const bool zmm_state = (xcr0 & 0xe6) == 0xe6;
  if (!ymm_state) return CpuFeatures{};
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = (b >> 5) & 1;
  f.avx512f = zmm_state && ((b >> 16) & 1);
  f.avx512dq = f.avx512f && ((b >> 17) & 1);
  f.avx512bw = f.avx512f && ((b >> 30) & 1);
  f.avx512vl = f.avx512f && ((b >> 31) & 1);
  f.avx512vnni = f.avx512f && ((c >> 11) & 1);
  f.avx512fp16 = f.avx512f && ((d >> 23) & 1);
  f.amx_tile = (d >> 24) & 1;
  __cpuid_count(7, 1, a, b, c, d);
  f.avx_vnni = (a >> 4) & 1;
  f.avx512bf16 = f.avx512f && ((a >> 5) & 1);
#endif
  return f;
}

Isa detect_best(const CpuFeatures& f) {
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni && f.fma && f.f16c)
    return Isa::kAvx512;
  if (f.avx2 && f.fma && f.f16c) return Isa::kAvx2;
  return Isa::kScalar;
}

std::atomic<int>& forced() {
  static std::atomic<int> isa{-1};
  return isa;
}

Isa from_env() {
  const char* env = std::getenv("LOUPE_ISA");
  if (env == nullptr || *env == '\0') return best_isa();
  const Isa want = parse_isa(env);
  if (want == Isa::kCount) {
    std::fprintf(stderr, "loupe: warning: LOUPE_ISA=%s is not one of scalar, avx2, avx512\n", env);
    return best_isa();
  }
  if (!isa_supported(want)) {
    std::fprintf(stderr, "loupe: warning: LOUPE_ISA=%s is not supported by this CPU; using %s\n",
                 env, std::string(isa_name(best_isa())).c_str());
    return best_isa();
  }
  return want;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

Isa best_isa() {
  static const Isa best = detect_best(cpu_features());
  return best;
}

bool isa_supported(Isa isa) {
  return isa != Isa::kCount && static_cast<int>(isa) <= static_cast<int>(best_isa());
}

Isa active_isa() {
  static const Isa env = from_env();
  const int f = forced().load(std::memory_order_relaxed);
  return f >= 0 ? static_cast<Isa>(f) : env;
}

bool set_isa(Isa isa) {
  if (!isa_supported(isa)) return false;
  forced().store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kCount:
      break;
  }
  return "?";
}

Isa parse_isa(std::string_view name) {
  for (int i = 0; i < static_cast<int>(Isa::kCount); ++i)
    if (isa_name(static_cast<Isa>(i)) == name) return static_cast<Isa>(i);
  return Isa::kCount;
}

std::string feature_string() {
  const CpuFeatures& f = cpu_features();
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(f.avx2, "AVX2");
  add(f.fma, "FMA");
  add(f.f16c, "F16C");
  add(f.avx_vnni, "AVX_VNNI");
  add(f.avx512f, "AVX512F");
  add(f.avx512bw, "AVX512BW");
  add(f.avx512vl, "AVX512VL");
  add(f.avx512vnni, "AVX512_VNNI");
  add(f.avx512bf16, "AVX512_BF16");
  add(f.avx512fp16, "AVX512_FP16");
  add(f.amx_tile, "AMX(unused)");
  return s;
}

std::string cpu_brand() {
#if LOUPE_SIMD_X86
  unsigned regs[12];
  if (__get_cpuid_max(0x80000000u, nullptr) < 0x80000004u) return "unknown";
  for (unsigned i = 0; i < 3; ++i)
    __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
  char brand[49];
  std::memcpy(brand, regs, 48);
  brand[48] = '\0';
  std::string s(brand);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  const size_t first = s.find_first_not_of(' ');
  return first == std::string::npos ? "unknown" : s.substr(first);
#else
  return "unknown";
#endif
}

}  // namespace loupe::simd
