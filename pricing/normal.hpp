// Standard normal density and distribution, accurate in both tails.
#pragma once

#include <cmath>

#include "pricing/config.hpp"

namespace vaultrisk {

inline constexpr double kInvSqrt2 = 0.70710678118654752440;
inline constexpr double kInvSqrt2Pi = 0.39894228040143267794;

// N(x) through erfc keeps full relative precision in the lower tail, where
// 0.5*(1+erf(x)) would cancel to zero.
VR_HD_INLINE double norm_cdf(double x) { return 0.5 * erfc(-x * kInvSqrt2); }

VR_HD_INLINE double norm_pdf(double x) { return kInvSqrt2Pi * exp(-0.5 * x * x); }

}  // namespace vaultrisk
