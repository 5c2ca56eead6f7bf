// Raw SVI total implied variance and the mark volatility derived from it.
#pragma once

#include <cmath>

#include "pricing/config.hpp"

namespace vaultrisk {

struct SviParams {
  double a, b, rho, m, sigma;
};

// w(k) = a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2)), k = ln(K / F).
VR_HD_INLINE double svi_total_variance(const SviParams& p, double k) {
  const double x = k - p.m;
  return p.a + p.b * (p.rho * x + sqrt(x * x + p.sigma * p.sigma));
}

// Mark vol sqrt(w / T); returns NaN when w <= 0 or is not finite, which callers
// report as an input error (the slice is unusable at that strike).
VR_HD_INLINE double svi_vol(const SviParams& p, double strike, double forward, double t) {
  const double w = svi_total_variance(p, log(strike / forward));
  if (!(w > 0.0) || !is_finite(w)) return NAN;
  return sqrt(w / t);
}

}  // namespace vaultrisk
