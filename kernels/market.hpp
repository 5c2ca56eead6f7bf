// A market snapshot: per underlying spot, rate, confidence, valuation time and SVI slices.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "pricing/svi.hpp"

namespace vaultrisk {

struct ExpirySlice {
  double expiry;  // unix seconds
  SviParams svi;
};

struct UnderlyingMarket {
  double spot = 0.0;
  double rate = 0.0;
  double confidence = 1.0;
  double time = 0.0;  // valuation time of this underlying's instruments, unix seconds
  std::vector<ExpirySlice> expiries;
};

struct Market {
  double time = 0.0;
  std::map<std::string, UnderlyingMarket> underlyings;
};

// Checks one underlying's numbers (finite, positive spot, confidence in [0,1],
// sane SVI parameters, no duplicate expiry). Throws input_error prefixed by `where`.
void validate_underlying_market(const UnderlyingMarket& m, const std::string& where);

}  // namespace vaultrisk
