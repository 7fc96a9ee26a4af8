// AVX-512 kernels for K-quant weights (Q4_K, Q6_K, ...). Returns an empty WeightKernel for types it does
// not cover; avx512_kernel (matmul_avx512.cpp) then uses the shared x86 kernels.
#include "kernels/matmul_isa.h"

namespace loupe::kernels::isa {

WeightKernel avx512_kquant_kernel(DType) {
  return {};
}

}  // namespace loupe::kernels::isa
