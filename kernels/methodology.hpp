// Margin methodology configuration (SPEC §4), with per-underlying overrides.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "pricing/vol_shock.hpp"

namespace vaultrisk {

struct Scenario {
  double spot;   // spot multiplier s_j
  VolMode vol;   // up | none | down
  double damp;   // dampening d_j applied to the scenario PnL
};

struct UnderlyingMethodology {
  std::vector<Scenario> scenarios;
  VolShockParams vol_shock;
  double mm_perp;          // MMcont: mm_perp * perp * S
  double mm_short;         //         + mm_short * short * S
  double im_perp;          // IMcont: MMcont + im_perp * perp * S
  double im_short;         //         + im_short * short * S
  double low_confidence;   //         + (c < low_confidence ? (1 - c) gross S : 0)
  double mm_scan;          // MM = -mm_scan * scan + MMcont
  double im_scan;          // IM = -im_scan * scan + IMcont
};

struct Methodology {
  UnderlyingMethodology base;
  std::map<std::string, UnderlyingMethodology> overrides;

  const UnderlyingMethodology& for_underlying(const std::string& name) const {
    auto it = overrides.find(name);
    return it == overrides.end() ? base : it->second;
  }
};

// The SPEC §4 defaults: 31-scenario PMRM-style grid and contingencies.
UnderlyingMethodology default_underlying_methodology();
Methodology default_methodology();

// Throws input_error (prefixed by `where`) when a value is out of range.
void validate_methodology(const UnderlyingMethodology& m, const std::string& where);

}  // namespace vaultrisk
