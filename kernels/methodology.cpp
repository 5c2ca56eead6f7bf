// Default methodology values and range checks.
#include "kernels/methodology.hpp"

#include <cmath>

#include "core/error.hpp"

namespace vaultrisk {

UnderlyingMethodology default_underlying_methodology() {
  UnderlyingMethodology m;
  const double core[] = {0.865, 0.91, 0.955, 1.0, 1.045, 1.09, 1.135};
  for (double s : core)
    for (VolMode v : {VolMode::up, VolMode::none, VolMode::down}) m.scenarios.push_back({s, v, 1.0});
  m.scenarios.push_back({0.82, VolMode::up, 1.0});
  m.scenarios.push_back({1.18, VolMode::up, 1.0});
  const double ext_s[] = {0.34, 0.67, 1.5, 2, 3, 4, 5, 6};
  const double ext_d[] = {0.21, 0.42, 0.2772, 0.1386, 0.0693, 0.0462, 0.03465, 0.02772};
  for (int i = 0; i < 8; ++i) m.scenarios.push_back({ext_s[i], VolMode::up, ext_d[i]});
  m.vol_shock = VolShockParams{2592000.0, 86400.0, 0.3, 0.13, 0.5, 0.3, 0.4};
  m.mm_perp = 0.03;
  m.mm_short = 0.003;
  m.im_perp = 0.01;
  m.im_short = 0.002;
  m.low_confidence = 0.55;
  m.mm_scan = 0.8;
  m.im_scan = 1.0;
  return m;
}

Methodology default_methodology() { return Methodology{default_underlying_methodology(), {}}; }

namespace {
void require(bool ok, const std::string& where, const std::string& what) {
  if (!ok) throw input_error(where + ": " + what);
}
bool nonneg(double x) { return std::isfinite(x) && x >= 0.0; }
}  // namespace

void validate_methodology(const UnderlyingMethodology& m, const std::string& where) {
  require(!m.scenarios.empty() && m.scenarios.size() <= 4096, where + ".scenarios",
          "need between 1 and 4096 scenarios");
  for (std::size_t j = 0; j < m.scenarios.size(); ++j) {
    const auto& s = m.scenarios[j];
    const std::string w = where + ".scenarios[" + std::to_string(j) + "]";
    require(std::isfinite(s.spot) && s.spot > 0.0, w + ".spot", "must be a positive number");
    require(nonneg(s.damp), w + ".damp", "must be a non-negative number");
  }
  const auto& v = m.vol_shock;
  require(std::isfinite(v.ref_horizon) && v.ref_horizon > 0, where + ".vol_shock.ref_horizon",
          "must be positive");
  require(std::isfinite(v.min_tte) && v.min_tte > 0, where + ".vol_shock.min_tte", "must be positive");
  require(nonneg(v.p_short), where + ".vol_shock.p_short", "must be non-negative");
  require(nonneg(v.p_long), where + ".vol_shock.p_long", "must be non-negative");
  require(nonneg(v.up_k), where + ".vol_shock.up_k", "must be non-negative");
  require(nonneg(v.down_k), where + ".vol_shock.down_k", "must be non-negative");
  require(nonneg(v.up_floor), where + ".vol_shock.up_floor", "must be non-negative");
  require(nonneg(m.mm_perp), where + ".contingency.mm_perp", "must be non-negative");
  require(nonneg(m.mm_short), where + ".contingency.mm_short", "must be non-negative");
  require(nonneg(m.im_perp), where + ".contingency.im_perp", "must be non-negative");
  require(nonneg(m.im_short), where + ".contingency.im_short", "must be non-negative");
  require(nonneg(m.low_confidence) && m.low_confidence <= 1.0, where + ".contingency.low_confidence",
          "must be in [0, 1]");
  require(nonneg(m.mm_scan), where + ".mm_scan", "must be non-negative");
  require(nonneg(m.im_scan), where + ".im_scan", "must be non-negative");
}

}  // namespace vaultrisk
