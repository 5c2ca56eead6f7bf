// SPEC §8: a stress scenario's shocked value of one instrument, and the Monte Carlo
// path model. Single-source maths, host and device.
#pragma once

#include <cmath>

#include "pricing/black76.hpp"
#include "pricing/config.hpp"

namespace vaultrisk {

// Value per unit of an option after a scenario: Black-76 at the shocked spot
// S' = S·s, the shortened year fraction T' = T − h, the mark vol fixed at
// σ' = max(0, σ + dv), and the same rate; T' <= 0 gives intrinsic at S'. One option
// under many scenarios of a horizon: the discount and growth factors are computed
// once. The same bits as black76(call, S', K, T', r, σ').price.
struct ShockedOption {
  bool is_call;
  double spot, strike, vol, t, discount, growth, sqrt_t;
  VR_HD ShockedOption(bool call, double s, double k, double t_today, double rate, double v, double horizon)
      : is_call(call), spot(s), strike(k), vol(v), t(t_today - horizon), discount(0), growth(0), sqrt_t(0) {
    if (t > 0.0) discount = exp(-rate * t), growth = exp(rate * t), sqrt_t = sqrt(t);
  }
  VR_HD double operator()(double spot_mult, double dvol) const {
    if (!(t > 0.0)) return intrinsic(is_call, spot * spot_mult, strike);
    return black_formula(is_call, strike, forward_at(spot_mult), std_dev_at(dvol), discount);
  }
  // Its Black-76 inputs under one scenario, for t > 0: the shocked forward and
  // standard deviation (so that a caller may run black_formula over many lanes).
  VR_HD double forward_at(double spot_mult) const { return spot * spot_mult * growth; }
  VR_HD double std_dev_at(double dvol) const { return (vol + dvol > 0.0 ? vol + dvol : 0.0) * sqrt_t; }
};

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
