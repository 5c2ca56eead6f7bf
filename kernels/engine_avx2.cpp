// The engine's block pass (kernels/functors.hpp's AggregateBlockOf), the same source
// built for AVX2: each position's scenario run is a four-wide multiply-add. Built
// with -mavx2 -mfma -ffp-contract=off (no fused multiply-adds, so every sum rounds
// as in the default build: the results are bit for bit the same); reached only
// where kernels/simd_pricing.cpp found AVX2 and FMA.
#include "kernels/functors.hpp"

namespace vaultrisk::detail {

void aggregate_blocks_avx2(const EngineView& v, const std::int32_t* ids, std::int64_t k0, std::int64_t k1) {
  const AggregateBlockOf<1> block{v, ids};
  for (std::int64_t k = k0; k < k1; ++k) block(k);
}

}  // namespace vaultrisk::detail
