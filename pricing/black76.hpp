// Black-76 on the forward F = S e^{rT}: price and Black-Scholes Greeks (q = 0)
// with every limit of SPEC §3 handled without NaN or inf.
#pragma once

#include <cmath>

#include "pricing/config.hpp"
#include "pricing/normal.hpp"

namespace vaultrisk {

inline constexpr double kSecondsPerYear = 31536000.0;
// Below this standard deviation the option is worth its discounted forward intrinsic.
inline constexpr double kMinStdDev = 1e-12;

struct OptionValue {
  double price, delta, gamma, vega, theta, rho;
};

VR_HD_INLINE double year_fraction(double expiry, double time) {
  return (expiry - time) / kSecondsPerYear;
}

VR_HD_INLINE double intrinsic(bool is_call, double underlying, double strike) {
  const double x = is_call ? underlying - strike : strike - underlying;
  return x > 0.0 ? x : 0.0;
}

// QuantLib's blackFormula shape: undiscounted Black on a forward, then discounted.
// Clamped at zero: the true value is never negative, and the difference of two
// tiny terms for far out-of-the-money strikes may round below it.
VR_HD_INLINE double black_formula(bool is_call, double strike, double forward, double std_dev,
                                  double discount) {
  if (!(std_dev >= kMinStdDev)) return discount * intrinsic(is_call, forward, strike);
  const double d1 = log(forward / strike) / std_dev + 0.5 * std_dev;
  const double d2 = d1 - std_dev;
  const double v = is_call ? forward * norm_cdf(d1) - strike * norm_cdf(d2)
                           : strike * norm_cdf(-d2) - forward * norm_cdf(-d1);
  return v > 0.0 ? discount * v : 0.0;
}

// Price and Greeks of a European option on spot S, strike K, year fraction t,
// continuously compounded rate r and fixed (sticky-strike) vol.
VR_HD_INLINE OptionValue black76(bool is_call, double spot, double strike, double t, double rate,
                                 double vol) {
  OptionValue o{0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  if (!(t > 0.0)) {  // expired: intrinsic at spot, no sensitivities
    o.price = intrinsic(is_call, spot, strike);
    return o;
  }
  const double discount = exp(-rate * t);
  const double forward = spot * exp(rate * t);
  const double sqrt_t = sqrt(t);
  const double std_dev = vol * sqrt_t;
  if (!(std_dev >= kMinStdDev)) {
    // Deterministic limit: V = D max(±(F - K), 0), i.e. ±(S - K D) when in the money.
    o.price = discount * intrinsic(is_call, forward, strike);
    if (o.price > 0.0) {
      const double sign = is_call ? 1.0 : -1.0;
      o.delta = sign;
      o.theta = -sign * rate * strike * discount;
      o.rho = sign * t * strike * discount;
    }
    return o;
  }
  const double d1 = log(forward / strike) / std_dev + 0.5 * std_dev;
  const double d2 = d1 - std_dev;
  const double pdf = norm_pdf(d1);
  const double decay = -spot * pdf * vol / (2.0 * sqrt_t);
  o.gamma = pdf / (spot * std_dev);
  o.vega = spot * pdf * sqrt_t;
  if (is_call) {
    const double nd1 = norm_cdf(d1), nd2 = norm_cdf(d2);
    const double v = forward * nd1 - strike * nd2;
    o.price = v > 0.0 ? discount * v : 0.0;
    o.delta = nd1;
    o.theta = decay - rate * strike * discount * nd2;
    o.rho = strike * t * discount * nd2;
  } else {
    const double nmd1 = norm_cdf(-d1), nmd2 = norm_cdf(-d2);
    const double v = strike * nmd2 - forward * nmd1;
    o.price = v > 0.0 ? discount * v : 0.0;
    o.delta = -nmd1;
    o.theta = decay + rate * strike * discount * nmd2;
    o.rho = -strike * t * discount * nmd2;
  }
  return o;
}

}  // namespace vaultrisk
