// The choice between the four-lane SLEEF path and the one-lane libm path, made once.
#include "kernels/simd_pricing.hpp"

#include "kernels/functors.hpp"
#include "kernels/stress_functors.hpp"

#include <cmath>
#include <cstdlib>

namespace vaultrisk::detail {

namespace {

struct Choice {
  bool simd;
  const char* name;
};

Choice choose() {
#if VR_HAVE_SLEEF
  if (std::getenv("VAULTRISK_SCALAR_PRICING")) return {false, "libm (1 lane): VAULTRISK_SCALAR_PRICING is set"};
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
    return {false, "libm (1 lane): this CPU has no AVX2 and FMA"};
  return {true, "SLEEF AVX2 (4 lanes)"};
#else
  return {false, "libm (1 lane): built without SLEEF"};
#endif
}

const Choice& choice() {
  static const Choice c = choose();
  return c;
}

}  // namespace

bool simd_pricing() { return choice().simd; }
const char* pricing_path() { return choice().name; }

void erfc_lanes(const double* x, double* out, std::int64_t n) {
#if VR_HAVE_SLEEF
  if (simd_pricing()) return erfc_lanes_avx2(x, out, n);
#endif
  for (std::int64_t j = 0; j < n; ++j) out[j] = std::erfc(x[j]);
}

void black_formula_lanes(bool call, double strike, const double* forward, const double* std_dev, double discount,
                         double minus, double* out, std::int64_t n) {
#if VR_HAVE_SLEEF
  if (simd_pricing()) return black_formula_lanes_avx2(call, strike, forward, std_dev, discount, minus, out, n);
#endif
  for (std::int64_t j = 0; j < n; ++j) out[j] = black_formula(call, strike, forward[j], std_dev[j], discount) - minus;
}

void black76_lanes(const std::uint8_t* call, const double* spot, const double* strike, const double* t,
                   const double* rate, const double* vol, OptionValue* out, std::int64_t n) {
#if VR_HAVE_SLEEF
  if (simd_pricing()) return black76_lanes_avx2(call, spot, strike, t, rate, vol, out, n);
#endif
  for (std::int64_t j = 0; j < n; ++j) out[j] = black76(call[j] != 0, spot[j], strike[j], t[j], rate[j], vol[j]);
}

#if !VR_HAVE_SLEEF
// No four-lane build (kernels/stress_avx2.cpp is built with SLEEF's path): never
// called, as simd_pricing() is false, but defined for the link.
void account_chunks_avx2(const StressView& v, std::int64_t c0, std::int64_t c1) {
  for (std::int64_t c = c0; c < c1; ++c) AccountChunk{v}(c);
}
void aggregate_blocks_avx2(const EngineView& v, const std::int32_t* ids, std::int64_t k0, std::int64_t k1) {
  for (std::int64_t k = k0; k < k1; ++k) AggregateBlock{v, ids}(k);
}
#endif

}  // namespace vaultrisk::detail
