// What the CPU can do, detected once (cpuid + the OS's saved-state mask), and which
// instruction-set level the kernels run at. Kernels pick their per-ISA table from
// active_isa() once; nothing below this header branches on ISA in an inner loop.
#pragma once

#include <string>
#include <string_view>

namespace loupe::simd {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx_vnni = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
  bool avx512fp16 = false;
  bool amx_tile = false;  // reported only: tiles are not used (they fault in some VMs)
};

// Kernel levels, each a superset of the one before.
enum class Isa {
  kScalar,  // portable C++: the reference twins
  kAvx2,    // AVX2 + FMA + F16C (Haswell and later, Zen)
  kAvx512,  // AVX-512 F/BW/VL/DQ + VNNI (Ice Lake, Sapphire Rapids, Zen 4); BF16 dot when present
  kCount
};

const CpuFeatures& cpu_features();
// The best level this CPU and OS support.
Isa best_isa();
// The level in use: best_isa(), or LOUPE_ISA=scalar|avx2|avx512 from the environment when
// the CPU supports it (a higher level than the CPU has falls back to best_isa() with a
// warning), or what set_isa() chose last.
Isa active_isa();
// Forces a level (tests run every path this way). Returns false, changing nothing, when
// the CPU lacks it.
bool set_isa(Isa isa);
bool isa_supported(Isa isa);
std::string_view isa_name(Isa isa);
// "scalar" / "avx2" / "avx512" -> level; kCount when unknown.
Isa parse_isa(std::string_view name);
// Feature names present, space-separated ("AVX2 FMA F16C AVX512F ... AVX512_BF16").
std::string feature_string();
// The CPU's brand string from cpuid ("Intel(R) Xeon(R) ..."), or "unknown".
std::string cpu_brand();

}  // namespace loupe::simd
