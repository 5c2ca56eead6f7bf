// Black-76 over runs of lanes: four at a time with SLEEF on an AVX2 + FMA CPU,
// one at a time with the C library's maths otherwise. Both evaluate the same
// templates of pricing/black76.hpp; this is where the path is chosen, once per
// process. The CUDA kernels keep CUDA's own maths and never come here.
#pragma once

#include <cstdint>

#include "pricing/black76.hpp"

namespace vaultrisk::detail {

// True when the four-lane path is in use: a build with SLEEF, a CPU with AVX2 and
// FMA, and VAULTRISK_SCALAR_PRICING unset (set it to compare the two paths).
bool simd_pricing();
// Its name for logs: "SLEEF AVX2 (4 lanes)" or "libm (1 lane)", with the reason.
const char* pricing_path();

// out[j] = erfc(x[j]), j < n: the four-lane erfc of pricing/simd.hpp, or libm's.
void erfc_lanes(const double* x, double* out, std::int64_t n);

// out[j] = black_formula(call, strike, forward[j], std_dev[j], discount) − minus, j < n.
void black_formula_lanes(bool call, double strike, const double* forward, const double* std_dev, double discount,
                         double minus, double* out, std::int64_t n);

// The same over a row of n lanes whose inputs the caller computes one at a time:
// inputs(j, forward, std_dev) sets lane j's, and they are handed to
// black_formula_lanes a run at a time (a stack buffer, never the heap).
template <class Inputs>
void black_formula_row(bool call, double strike, double discount, double minus, double* out, std::int32_t n,
                       const Inputs& inputs) {
  constexpr std::int32_t kRun = 64;
  double forward[kRun], std_dev[kRun];
  for (std::int32_t j0 = 0; j0 < n; j0 += kRun) {
    const std::int32_t m = n - j0 < kRun ? n - j0 : kRun;
    for (std::int32_t k = 0; k < m; ++k) inputs(j0 + k, forward[k], std_dev[k]);
    black_formula_lanes(call, strike, forward, std_dev, discount, minus, out + j0, m);
  }
}

// out[j] = black76(call[j] != 0, spot[j], strike[j], t[j], rate[j], vol[j]), j < n.
void black76_lanes(const std::uint8_t* call, const double* spot, const double* strike, const double* t,
                   const double* rate, const double* vol, OptionValue* out, std::int64_t n);

// The four-lane kernels themselves (kernels/simd_pricing_avx2.cpp, built for AVX2
// and FMA). Call only when simd_pricing() is true.
void erfc_lanes_avx2(const double* x, double* out, std::int64_t n);
void black_formula_lanes_avx2(bool call, double strike, const double* forward, const double* std_dev, double discount,
                              double minus, double* out, std::int64_t n);
void black76_lanes_avx2(const std::uint8_t* call, const double* spot, const double* strike, const double* t,
                        const double* rate, const double* vol, OptionValue* out, std::int64_t n);

}  // namespace vaultrisk::detail
