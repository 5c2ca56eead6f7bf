// SPEC §8: a stress scenario's shocked value of one instrument, and the Monte Carlo
// path model. Single-source maths, host and device.
#pragma once

#include <cmath>

#include "pricing/black76.hpp"
#include "pricing/config.hpp"

namespace vaultrisk {

// Value per unit of an option after a scenario: Black-76 at the shocked spot
// S' = S·s, the shortened year fraction T' = T − h, the mark vol fixed at
// σ' = max(0, σ + dv), and the same rate. T' <= 0 gives intrinsic at S'.
VR_HD_INLINE double shocked_option_value(bool is_call, double spot, double strike, double t, double rate,
                                         double vol, double spot_mult, double dvol, double horizon) {
  const double shocked_vol = vol + dvol > 0.0 ? vol + dvol : 0.0;
  return black76(is_call, spot * spot_mult, strike, t - horizon, rate, shocked_vol).price;
}

// Monte Carlo spot multiplier of one underlying: exp(−σ²h/2 + σ·√h·z), so that
// E[s] = 1 (a martingale over the horizon).
VR_HD_INLINE double mc_spot_multiplier(double sigma, double horizon, double z) {
  return exp(-0.5 * sigma * sigma * horizon + sigma * sqrt(horizon) * z);
}

// Monte Carlo vol move: vol_of_vol·σ·√h·W with W = ρ·z + √(1−ρ²)·η.
VR_HD_INLINE double mc_vol_shift(double sigma, double vol_of_vol, double horizon, double rho, double z, double eta) {
  return vol_of_vol * sigma * sqrt(horizon) * (rho * z + sqrt(1.0 - rho * rho) * eta);
}

}  // namespace vaultrisk
