// Range checks of market numbers, shared by the file loader and live feeds.
#include "kernels/market.hpp"

#include <cmath>
#include <set>

#include "core/error.hpp"

namespace vaultrisk {

namespace {
void require(bool ok, const std::string& where, const char* what) {
  if (!ok) throw input_error(where + ": " + what);
}
}  // namespace

void validate_underlying_market(const UnderlyingMarket& m, const std::string& where) {
  require(std::isfinite(m.spot) && m.spot > 0.0, where + ".spot", "must be a positive finite number");
  require(std::isfinite(m.rate) && std::fabs(m.rate) < 10.0, where + ".rate",
          "must be a finite number with |rate| < 10");
  require(std::isfinite(m.confidence) && m.confidence >= 0.0 && m.confidence <= 1.0,
          where + ".confidence", "must be in [0, 1]");
  require(std::isfinite(m.time), where + ".time", "must be a finite number");
  std::set<double> seen;
  for (std::size_t e = 0; e < m.expiries.size(); ++e) {
    const ExpirySlice& s = m.expiries[e];
    const std::string w = where + ".expiries[" + std::to_string(e) + "]";
    require(std::isfinite(s.expiry), w + ".expiry", "must be a finite number");
    require(seen.insert(s.expiry).second, w + ".expiry", "duplicate expiry");
    require(std::isfinite(s.svi.a), w + ".svi.a", "must be a finite number");
    require(std::isfinite(s.svi.b) && s.svi.b >= 0.0, w + ".svi.b", "must be a finite number >= 0");
    require(std::isfinite(s.svi.rho) && std::fabs(s.svi.rho) <= 1.0, w + ".svi.rho",
            "must be in [-1, 1]");
    require(std::isfinite(s.svi.m), w + ".svi.m", "must be a finite number");
    require(std::isfinite(s.svi.sigma) && s.svi.sigma >= 0.0, w + ".svi.sigma",
            "must be a finite number >= 0");
  }
}

}  // namespace vaultrisk
