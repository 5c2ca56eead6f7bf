// Black-76 on the forward F = S e^{rT}: price and Black-Scholes Greeks (q = 0)
// with every limit of SPEC §3 handled without NaN or inf.
#pragma once

#include <cmath>

#include "pricing/config.hpp"
#include "pricing/lanes.hpp"
#include "pricing/normal.hpp"

namespace vaultrisk {

inline constexpr double kSecondsPerYear = 31536000.0;
// Below this standard deviation the option is worth its discounted forward intrinsic.
inline constexpr double kMinStdDev = 1e-12;

template <class T>
struct OptionValues {
  T price, delta, gamma, vega, theta, rho;
};
using OptionValue = OptionValues<double>;

VR_HD_INLINE double year_fraction(double expiry, double time) {
  return (expiry - time) / kSecondsPerYear;
}

// max(±(underlying − strike), 0). `is_call` is a bool, or a mask of lanes.
template <class M, class T, class K>
VR_HD_INLINE T intrinsic_of(M is_call, T underlying, K strike) {
  const T x = select(is_call, underlying - strike, strike - underlying);
  return select(x > 0.0, x, T(0.0));
}
VR_HD_INLINE double intrinsic(bool is_call, double underlying, double strike) {
  return intrinsic_of(is_call, underlying, strike);
}

// QuantLib's blackFormula shape: undiscounted Black on a forward, then discounted.
// Clamped at zero: the true value is never negative, and the difference of two
// tiny terms for far out-of-the-money strikes may round below it. One option
// (is_call, strike, discount) under lanes of forwards and standard deviations.
template <class T>
VR_HD_INLINE T black_formula_of(bool is_call, double strike, T forward, T std_dev, double discount) {
  const auto limit = !(std_dev >= kMinStdDev);
  const T at_limit = discount * intrinsic_of(is_call, forward, strike);
  if (all_of(limit)) return at_limit;
  const T sd = select(limit, T(1.0), std_dev);  // limit lanes: any finite value, discarded
  const T d1 = log(forward / strike) / sd + 0.5 * sd;
  const T d2 = d1 - sd;
  const T v = is_call ? forward * norm_cdf(d1) - strike * norm_cdf(d2)
                      : strike * norm_cdf(-d2) - forward * norm_cdf(-d1);
  return select(limit, at_limit, select(v > 0.0, discount * v, T(0.0)));
}
VR_HD_INLINE double black_formula(bool is_call, double strike, double forward, double std_dev, double discount) {
  return black_formula_of(is_call, strike, forward, std_dev, discount);
}

// Price and Greeks of a European option on spot S, strike K, year fraction t,
// continuously compounded rate r and fixed (sticky-strike) vol. `is_call` is a
// bool for one double, or a mask of lanes for a pack. Calls and puts share one
// expression with sign = ±1: N(±d), and ±x is exact, so a put takes the same bits
// as its own formula K·N(−d2) − F·N(−d1).
template <class T, class M>
VR_HD_INLINE OptionValues<T> black76_of(M is_call, T spot, T strike, T t, T rate, T vol) {
  const T zero(0.0);
  const auto expired = !(t > 0.0);  // intrinsic at spot, no sensitivities
  const T at_expiry = intrinsic_of(is_call, spot, strike);
  if (all_of(expired)) return OptionValues<T>{at_expiry, zero, zero, zero, zero, zero};
  const T tt = select(expired, T(1.0), t);  // expired lanes: any valid t, discarded
  const T discount = exp(-rate * tt);
  const T forward = spot * exp(rate * tt);
  const T sqrt_t = sqrt(tt);
  const T std_dev = vol * sqrt_t;
  const T sign = select(is_call, T(1.0), T(-1.0));

  // Deterministic limit: V = D max(±(F - K), 0), i.e. ±(S - K D) when in the money.
  const auto limit = !(std_dev >= kMinStdDev);
  const T lim_price = discount * intrinsic_of(is_call, forward, strike);
  const auto lim_itm = lim_price > 0.0;
  OptionValues<T> lim{lim_price, select(lim_itm, sign, zero), zero, zero,
                      select(lim_itm, -sign * rate * strike * discount, zero),
                      select(lim_itm, sign * tt * strike * discount, zero)};
  OptionValues<T> o = lim;
  if (!all_of(limit)) {
    const T sd = select(limit, T(1.0), std_dev);  // limit lanes: any finite value, discarded
    const T d1 = log(forward / strike) / sd + 0.5 * sd;
    const T d2 = d1 - sd;
    const T pdf = norm_pdf(d1);
    const T decay = -spot * pdf * vol / (2.0 * sqrt_t);
    const T n1 = norm_cdf(sign * d1), n2 = norm_cdf(sign * d2);  // N(d) for a call, N(−d) for a put
    const T v = sign * (forward * n1 - strike * n2);
    o.price = select(limit, lim.price, select(v > 0.0, discount * v, zero));
    o.delta = select(limit, lim.delta, sign * n1);
    o.gamma = select(limit, zero, pdf / (spot * sd));
    o.vega = select(limit, zero, spot * pdf * sqrt_t);
    o.theta = select(limit, lim.theta, decay - sign * (rate * strike * discount * n2));
    o.rho = select(limit, lim.rho, sign * (strike * tt * discount * n2));
  }
  return OptionValues<T>{select(expired, at_expiry, o.price), select(expired, zero, o.delta),
                         select(expired, zero, o.gamma),      select(expired, zero, o.vega),
                         select(expired, zero, o.theta),      select(expired, zero, o.rho)};
}
VR_HD_INLINE OptionValue black76(bool is_call, double spot, double strike, double t, double rate, double vol) {
  return black76_of(is_call, spot, strike, t, rate, vol);
}

}  // namespace vaultrisk
