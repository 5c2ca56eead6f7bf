// Standard normal density and distribution, accurate in both tails. Templates over
// the lane type (pricing/lanes.hpp); exp and erfc are found for a pack by ADL.
#pragma once

#include <cmath>

#include "pricing/config.hpp"

namespace vaultrisk {

inline constexpr double kInvSqrt2 = 0.70710678118654752440;
inline constexpr double kInvSqrt2Pi = 0.39894228040143267794;

// N(x) through erfc keeps full relative precision in the lower tail, where
// 0.5*(1+erf(x)) would cancel to zero.
template <class T>
VR_HD_INLINE T norm_cdf(T x) {
  return 0.5 * erfc(-x * kInvSqrt2);
}

template <class T>
VR_HD_INLINE T norm_pdf(T x) {
  return kInvSqrt2Pi * exp(-0.5 * x * x);
}

}  // namespace vaultrisk
