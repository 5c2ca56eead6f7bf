// PMRM-style volatility shocks of the scenario grid (SPEC §4).
#pragma once

#include <cmath>

#include "pricing/config.hpp"

namespace vaultrisk {

enum class VolMode : signed char { down = -1, none = 0, up = 1 };

struct VolShockParams {
  double ref_horizon;   // seconds; 2592000 (30 days)
  double min_tte;       // seconds; 86400 (1 day) floor on time to expiry
  double p_short;       // exponent when tte <= ref_horizon; 0.3
  double p_long;        // exponent beyond; 0.13
  double up_k;          // up = 1 + up_k m; 0.5
  double down_k;        // down = max(0, 1 - down_k m); 0.3
  double up_floor;      // shocked-up vol is at least this; 0.4
};

struct VolShock {
  double up, down;
};

// m = (ref / max(tte, min_tte))^p: short-dated options get larger vol shocks.
VR_HD_INLINE VolShock vol_shock(const VolShockParams& p, double tte_seconds) {
  const double e = tte_seconds <= p.ref_horizon ? p.p_short : p.p_long;
  const double m = pow(p.ref_horizon / fmax(tte_seconds, p.min_tte), e);
  const double down = 1.0 - p.down_k * m;
  return VolShock{1.0 + p.up_k * m, down > 0.0 ? down : 0.0};
}

VR_HD_INLINE double shocked_vol(VolMode mode, double vol, const VolShock& s, double up_floor) {
  if (mode == VolMode::up) return fmax(up_floor, vol * s.up);
  if (mode == VolMode::down) return vol * s.down;
  return vol;
}

}  // namespace vaultrisk
