// Range checks of market numbers, shared by the file loader and live feeds.
#include "kernels/market.hpp"

#include <cmath>
#include <set>

#include "core/error.hpp"
#include "core/limits.hpp"

namespace vaultrisk {

namespace {
void require(bool ok, const std::string& where, const char* what) {
  if (!ok) throw input_error(where + ": " + what);
}
}  // namespace

void validate_underlying_market(const UnderlyingMarket& m, const std::string& where) {
  using namespace limits;
  require_range(m.spot, kMinPrice, kMaxPrice, where + ".spot");
  require_range(m.rate, -kMaxAbsRate, kMaxAbsRate, where + ".rate");
  require_range(m.confidence, 0.0, 1.0, where + ".confidence");
  require_range(m.time, 0.0, kMaxTime, where + ".time");
  std::set<double> seen;
  for (std::size_t e = 0; e < m.expiries.size(); ++e) {
    const ExpirySlice& s = m.expiries[e];
    const std::string w = where + ".expiries[" + std::to_string(e) + "]";
    require_range(s.expiry, 0.0, kMaxTime, w + ".expiry");
    require(seen.insert(s.expiry).second, w + ".expiry", "duplicate expiry");
    require_range(s.svi.a, -kMaxSvi, kMaxSvi, w + ".svi.a");
    require_range(s.svi.b, 0.0, kMaxSvi, w + ".svi.b");
    require_range(s.svi.rho, -1.0, 1.0, w + ".svi.rho");
    require_range(s.svi.m, -kMaxSvi, kMaxSvi, w + ".svi.m");
    require_range(s.svi.sigma, 0.0, kMaxSvi, w + ".svi.sigma");
  }
}

}  // namespace vaultrisk
