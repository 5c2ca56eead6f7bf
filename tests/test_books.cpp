// Random test cases.
#include "test_books.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

namespace vaultrisk::books {

namespace {
constexpr double kNow = 1767225600;
}

Case random_case(std::uint64_t seed, int accounts) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Case c;
  c.market.time = kNow;
  BookBuilder b;
  const struct { const char* name; double spot; double conf; } unds[] = {
      {"AAA", 100.0, 1.0}, {"BBB", 2500.0, 0.4}, {"CCC", 0.5, 0.9}};
  const double offsets[] = {-86400, 3600, 10 * 86400.0, 60 * 86400.0, 400 * 86400.0};
  std::vector<std::int32_t> instruments;
  for (const auto& d : unds) {
    UnderlyingMarket m;
    m.spot = d.spot * (0.9 + 0.2 * u(rng));
    m.rate = 0.08 * u(rng) - 0.01;
    m.confidence = d.conf;
    m.time = kNow;
    instruments.push_back(b.add_perp(std::string(d.name) + "-PERP", d.name));
    for (double off : offsets) {
      const double expiry = kNow + off;
      if (off > 0) {
        const double t = off / 31536000.0, v = 0.3 + 0.9 * u(rng);
        m.expiries.push_back({expiry, SviParams{0.6 * v * v * t, (0.05 + 0.2 * u(rng)) * std::sqrt(t),
                                                -0.7 + 1.2 * u(rng), 0.2 * u(rng) - 0.1, 0.05 + 0.3 * u(rng)}});
      }
      for (int k = 0; k < 4; ++k) {
        const double strike = d.spot * std::exp(-0.6 + 1.2 * u(rng));
        const bool call = u(rng) < 0.5;
        instruments.push_back(b.add_option(std::string(d.name) + "-" + std::to_string(static_cast<long long>(off)) +
                                               "-" + std::to_string(k) + (call ? "-C" : "-P"),
                                           d.name, expiry, strike, call));
      }
    }
    c.market.underlyings[d.name] = m;
  }
  // An underlying nobody holds is ignored.
  c.market.underlyings["ZZZ"] = UnderlyingMarket{1.0, 0.0, 1.0, kNow, {}};

  for (int a = 0; a < accounts; ++a) {
    const auto acc = b.add_account(1000 + static_cast<std::uint64_t>(a) * 7, 20000 * u(rng) - 2000);
    const int n = static_cast<int>(u(rng) * 12);  // some accounts hold nothing
    std::vector<std::int32_t> held;
    for (int p = 0; p < n; ++p) {
      const std::int32_t i = instruments[static_cast<std::size_t>(u(rng) * instruments.size())];
      if (std::find(held.begin(), held.end(), i) != held.end()) continue;
      held.push_back(i);
      b.add_position(acc, i, std::round((u(rng) - 0.5) * 200) / 10, 50 + 3000 * u(rng));
    }
  }
  c.book = std::move(b).build();

  c.methodology = default_methodology();
  UnderlyingMethodology small = c.methodology.base;
  small.scenarios = {{0.8, VolMode::up, 1.0}, {0.9, VolMode::down, 1.0}, {1.1, VolMode::none, 0.5},
                     {1.25, VolMode::up, 1.0}, {3.0, VolMode::up, 0.1}};
  small.mm_perp = 0.05;
  small.im_scan = 1.2;
  small.vol_shock.up_floor = 0.8;
  c.methodology.overrides["CCC"] = small;
  return c;
}

UnderlyingMarket moved(const UnderlyingMarket& m, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  UnderlyingMarket n = m;
  n.spot *= 0.7 + 0.6 * u(rng);
  n.rate += 0.01 * (u(rng) - 0.5);
  n.time += 60 * u(rng);
  for (auto& e : n.expiries) e.svi.a *= 0.8 + 0.4 * u(rng);
  return n;
}

}  // namespace vaultrisk::books
