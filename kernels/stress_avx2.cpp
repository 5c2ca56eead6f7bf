// Stress's per-account pass (kernels/stress_functors.hpp's AccountChunkOf), the same
// source built for AVX2: its scenario loops vectorise four wide. Built with -mavx2
// -mfma -ffp-contract=off (no fused multiply-adds, so every sum rounds as in the
// default build: outputs are byte-identical); reached only where
// kernels/simd_pricing.cpp found AVX2 and FMA.
#include "kernels/stress_functors.hpp"

namespace vaultrisk::detail {

void account_chunks_avx2(const StressView& v, std::int64_t c0, std::int64_t c1) {
  const AccountChunkOf<1> chunk{v};
  for (std::int64_t c = c0; c < c1; ++c) chunk(c);
}

}  // namespace vaultrisk::detail
