// Stress kernels (SPEC §8) against independent references: cuRAND's host generator
// called directly, the lognormal closed form, the model's correlation, a direct
// scalar recomputation of every account's PnL, and the order statistics.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/stress.hpp"
#include "kernels/stress_backend.hpp"
#include "pricing/black76.hpp"
#include "pricing/scenario_shock.hpp"
#include "tests/test_books.hpp"

#if VR_HAVE_CURAND
#include <curand.h>
#endif

using namespace vaultrisk;

namespace {

// One perp of `underlying`, one account holding `qty` of it, spot 100.
books::Case perp_case(double qty) {
  BookBuilder b;
  const auto btc = b.add_perp("BTC-PERP", "BTC");
  const auto eth = b.add_perp("ETH-PERP", "ETH");
  b.add_position(b.add_account(1, 1e6), btc, qty, 100.0);
  b.add_position(b.add_account(2, 1e6), eth, qty, 100.0);
  books::Case c{std::move(b).build(), {}, default_methodology()};
  c.market.time = 1.7e9;
  for (const char* u : {"BTC", "ETH"}) c.market.underlyings[u] = UnderlyingMarket{100.0, 0.0, 1.0, 1.7e9, {}};
  return c;
}

MonteCarloSpec mc(std::int64_t paths, std::uint64_t seed, std::vector<double> sigma, double rho = 0.0, double vov = 0.0,
                  double spot_vol = 0.0) {
  MonteCarloSpec m;
  m.paths = paths;
  m.seed = seed;
  const auto n = sigma.size();
  m.sigma = std::move(sigma);
  m.vol_of_vol.assign(n, vov);
  m.correlation.assign(n * n, rho);
  for (std::size_t u = 0; u < n; ++u) m.correlation[u * n + u] = 1.0;
  m.spot_vol_correlation = spot_vol;
  return m;
}

StressSpec mc_spec(MonteCarloSpec m, double horizon_days, double confidence = 0.99) {
  StressSpec s;
  s.source = StressSource::monte_carlo;
  s.monte_carlo = std::move(m);
  s.horizon_days = horizon_days;
  s.confidence = confidence;
  return s;
}

}  // namespace

TEST(StressMonteCarlo, NormalsAreCuRandsHostGeneratorAndScenariosFollowSpec) {
  if (!detail::curand_available()) GTEST_SKIP() << "no cuRAND in this build";
#if VR_HAVE_CURAND
  // cuRAND called directly: Philox4_32_10, seed, offset 0, default ordering.
  const std::size_t n = 2 * 2 * 8;  // 8 paths over 2 underlyings
  std::vector<double> direct(n);
  curandGenerator_t g;
  ASSERT_EQ(curandCreateGeneratorHost(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10), CURAND_STATUS_SUCCESS);
  curandSetPseudoRandomGeneratorSeed(g, 42);
  curandGenerateNormalDouble(g, direct.data(), n, 0.0, 1.0);
  curandDestroyGenerator(g);
  EXPECT_EQ(detail::curand_host_normals(42, 0, n), direct);
  // Any window of the stream is the same values (what batches and workers rely on).
  const auto window = detail::curand_host_normals(42, 12, 8);
  EXPECT_TRUE(std::equal(window.begin(), window.end(), direct.begin() + 12));

  // Path p takes ε from [4p, 4p+2) and η from [4p+2, 4p+4); ρ = 0.6, ρ_sv = -0.5, vov 1.
  const double s1 = 0.8, s2 = 0.5, rho = 0.6, rsv = -0.5, vov = 1.0, h = 1.0 / 365;
  MonteCarloSpec m = mc(8, 42, {s1, s2}, rho, vov, rsv);
  const books::Case c = perp_case(1.0);
  const StressResult r = run_stress(c.book, c.market, c.methodology, mc_spec(m, 1.0), Device::cpu);
  for (int p = 0; p < 8; ++p) {
    const double* e = direct.data() + 4 * p;
    const double z1 = e[0], z2 = rho * e[0] + std::sqrt(1 - rho * rho) * e[1];
    const double zs[2] = {z1, z2}, sig[2] = {s1, s2};
    for (int u = 0; u < 2; ++u) {
      const double s = std::exp(-0.5 * sig[u] * sig[u] * h + sig[u] * std::sqrt(h) * zs[u]);
      const double dv = vov * sig[u] * std::sqrt(h) * (rsv * zs[u] + std::sqrt(1 - rsv * rsv) * e[2 + u]);
      EXPECT_NEAR(r.spot_mult[p * 2 + u], s, 1e-15 * s) << "path " << p << " underlying " << u;
      EXPECT_NEAR(r.dvol[p * 2 + u], dv, 1e-15) << "path " << p << " underlying " << u;
      // A perp's PnL is S·(s − 1) per unit (qty 1, spot 100).
      EXPECT_NEAR(r.vault_und[p * 2 + u], 100.0 * (s - 1.0), 1e-12);
    }
  }
#endif
}

TEST(StressMonteCarlo, EmpiricalCorrelationMatchesTheModel) {
  if (!detail::curand_available()) GTEST_SKIP() << "no cuRAND in this build";
  const books::Case c = perp_case(1.0);
  const StressResult r = run_stress(c.book, c.market, c.methodology, mc_spec(mc(20000, 3, {0.7, 0.9}, 0.8), 1.0), Device::cpu);
  std::vector<double> x, y;
  for (std::int64_t p = 0; p < r.scenarios; ++p) x.push_back(std::log(r.spot_mult[2 * p])), y.push_back(std::log(r.spot_mult[2 * p + 1]));
  const auto mean = [](const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / v.size(); };
  const double mx = mean(x), my = mean(y);
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t k = 0; k < x.size(); ++k) sxy += (x[k] - mx) * (y[k] - my), sxx += (x[k] - mx) * (x[k] - mx), syy += (y[k] - my) * (y[k] - my);
  // Sampling sd of a correlation near 0.8 at n = 20000: (1 − ρ²)/√n ≈ 0.0025.
  EXPECT_NEAR(sxy / std::sqrt(sxx * syy), 0.8, 4 * 0.0025);
  EXPECT_NEAR(std::sqrt(sxx / x.size()) * std::sqrt(365.0), 0.7, 0.7 * 4 / std::sqrt(2.0 * x.size()));
}

TEST(StressMonteCarlo, SinglePerpVarAndEsMatchTheLognormalClosedForm) {
  if (!detail::curand_available()) GTEST_SKIP() << "no cuRAND in this build";
  // Long q = 10 BTC at S = 100, σ = 0.8, 10 days: loss = q·S·(1 − s), s lognormal with E[s] = 1.
  const double q = 10, S = 100, sigma = 0.8, days = 10, h = days / 365, A = 0.99;
  const std::int64_t n = 200000;
  books::Case c = perp_case(q);
  const StressResult r = run_stress(c.book, c.market, c.methodology, mc_spec(mc(n, 11, {sigma, sigma}), days, A), Device::cpu);
  const double z = -2.3263478740408408;  // Φ⁻¹(0.01)
  const double sd = sigma * std::sqrt(h);
  const double var = q * S * (1 - std::exp(-0.5 * sd * sd + sd * z));
  const double Phi = 0.5 * std::erfc(-(z - sd) / std::sqrt(2.0));
  const double es = q * S * (1 - Phi / (1 - A));
  // Monte Carlo standard errors: VaR √(A(1−A)/n)/f(VaR); ES from the tail's spread.
  const double s_q = std::exp(-0.5 * sd * sd + sd * z);
  const double f = std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI) / (sd * s_q) / (q * S);  // density of the loss at VaR
  const double se_var = std::sqrt(A * (1 - A) / n) / f;
  const double se_es = 2.0 * se_var;  // the tail's spread is about the VaR's scale here; conservative
  EXPECT_NEAR(r.var[0], var, 3 * se_var) << "closed form " << var;
  EXPECT_NEAR(r.es[0], es, 3 * se_es) << "closed form " << es;
  // The vault holds the same BTC position plus an ETH one on the same paths' other column.
  EXPECT_GT(r.vault_es, r.es[0]);
}

TEST(StressMonteCarlo, VarAndEsAreTheOrderStatisticsOfThePnl) {
  if (!detail::curand_available()) GTEST_SKIP() << "no cuRAND in this build";
  const books::Case c = books::random_case(5, 300);
  MonteCarloSpec m = mc(3000, 9, std::vector<double>(c.book.underlyings.size(), 0.6), 0.3, 0.5, -0.4);
  const StressResult r = run_stress(c.book, c.market, c.methodology, mc_spec(m, 2.0, 0.975), Device::cpu);
  const std::int32_t k = tail_count(0.975, 3000);
  ASSERT_EQ(k, 75);
  std::vector<double> loss(r.vault_pnl.size());
  for (std::size_t i = 0; i < loss.size(); ++i) loss[i] = -r.vault_pnl[i];
  std::sort(loss.rbegin(), loss.rend());
  EXPECT_EQ(r.vault_var, loss[k - 1]);
  EXPECT_NEAR(r.vault_es, std::accumulate(loss.begin(), loss.begin() + k, 0.0) / k, 1e-9 * std::fabs(r.vault_es));
  double contrib = 0;
  for (double x : r.contributions) contrib += x;
  EXPECT_NEAR(contrib, r.vault_es, 1e-9 * std::fabs(r.vault_es));
  std::vector<double> bad = r.bad_debt;
  std::sort(bad.rbegin(), bad.rend());
  EXPECT_EQ(r.bad_debt_var, bad[k - 1]);
}

TEST(StressNamed, AccountPnlIsTheFullRevaluationOfEveryPosition) {
  // A direct scalar recomputation: Σ q·(V' − V) with Black-76 at S', T − h, max(0, σ + dv).
  const books::Case c = books::random_case(8, 200);
  const auto U = c.book.underlyings.size();
  StressSpec spec;
  spec.source = StressSource::named;
  spec.horizon_days = 3;
  const double sm[] = {0.7, 1.0, 1.25}, dv[] = {0.25, -0.5, 0.0};
  for (int i = 0; i < 3; ++i) {
    spec.table.names.push_back(i == 0 ? "s0" : i == 1 ? "s1" : "s2");
    for (std::size_t u = 0; u < U; ++u) spec.table.spot_mult.push_back(sm[(i + u) % 3]), spec.table.dvol.push_back(dv[(i + u) % 3]);
  }
  Engine engine(c.book, c.methodology, Device::cpu);
  engine.revalue(c.market);
  const InstrumentTable today = engine.instruments();
  const StressResult r = run_stress(c.book, c.market, c.methodology, spec, Device::cpu);
  const double h = 3.0 / 365;
  for (int i = 0; i < 3; ++i) {
    std::vector<double> pnl(c.book.account_count(), 0.0);
    for (std::size_t p = 0; p < c.book.position_count(); ++p) {
      const auto k = static_cast<std::size_t>(c.book.pos_instrument[p]);
      const std::size_t u = static_cast<std::size_t>(c.book.underlying[k]);
      const UnderlyingMarket& m = c.market.underlyings.at(c.book.underlyings[u]);
      const double s = spec.table.spot_mult[i * U + u], d = spec.table.dvol[i * U + u];
      double dV;
      if (c.book.kind[k] == InstrumentKind::perp) {
        dV = m.spot * (s - 1);
      } else {
        const double t = (c.book.expiry[k] - m.time) / kSecondsPerYear;
        dV = black76(c.book.is_call[k], m.spot * s, c.book.strike[k], t - h, m.rate, std::max(0.0, today.vol[k] + d)).price -
             today.price[k];
      }
      pnl[c.book.pos_account[p]] += c.book.pos_quantity[p] * dV;
    }
    for (std::size_t a = 0; a < pnl.size(); ++a)
      EXPECT_NEAR(r.named_pnl[a * 3 + i], pnl[a], 1e-9 * std::max(1.0, std::fabs(pnl[a]))) << "account " << a << " scenario " << i;
  }
}

TEST(StressParts, GroupsRunApartAndMergedInAnyOrderAreBitIdentical) {
  if (!detail::curand_available()) GTEST_SKIP() << "no cuRAND in this build";
  // 10,000 accounts: three groups of 4,096, the last one short.
  const books::Case c = books::random_case(12, 10000);
  MonteCarloSpec m = mc(700, 5, std::vector<double>(c.book.underlyings.size(), 0.7), 0.4, 0.8, -0.3);
  const StressSpec spec = mc_spec(m, 1.0, 0.99);
  const StressResult whole = run_stress(c.book, c.market, c.methodology, spec, Device::cpu);
  std::vector<StressResult> parts;
  const auto n = static_cast<std::int64_t>(c.book.account_count());
  for (std::int64_t a = 0; a < n; a += detail::kStressGroupAccounts)
    parts.push_back(run_stress_accounts(c.book, c.market, c.methodology, spec, Device::cpu, a,
                                        std::min(n, a + detail::kStressGroupAccounts)));
  ASSERT_EQ(parts.size(), 3u);
  std::swap(parts[0], parts[2]);  // arrival order must not matter
  const StressResult merged = merge_stress(std::move(parts));
  EXPECT_EQ(merged.vault_pnl, whole.vault_pnl);
  EXPECT_EQ(merged.bad_debt, whole.bad_debt);
  EXPECT_EQ(merged.insolvent, whole.insolvent);
  EXPECT_EQ(merged.var, whole.var);
  EXPECT_EQ(merged.es, whole.es);
  EXPECT_EQ(merged.worst_pnl, whole.worst_pnl);
  EXPECT_EQ(merged.worst_scenario, whole.worst_scenario);
  EXPECT_EQ(merged.insolvent_scenarios, whole.insolvent_scenarios);
  EXPECT_EQ(merged.vault_var, whole.vault_var);
  EXPECT_EQ(merged.vault_es, whole.vault_es);
  EXPECT_EQ(merged.bad_debt_es, whole.bad_debt_es);
  EXPECT_EQ(merged.contributions, whole.contributions);
}

TEST(StressShock, ShockedOptionIsBlack76AtTheShockedInputsBitForBit) {
  // Expired by the horizon, zero and positive shocked vols, calls and puts, ITM and OTM.
  for (bool call : {true, false})
    for (double t : {0.5 / 365, 3.0 / 365, 0.25, 2.0})
      for (double vol : {0.0, 0.3, 1.2})
        for (double s : {0.5, 0.97, 1.0, 1.4})
          for (double dv : {-2.0, -0.1, 0.0, 0.25}) {
            const double h = 1.0 / 365, spot = 60000, strike = 62000, rate = 0.04;
            const ShockedOption option(call, spot, strike, t, rate, vol, h);
            const double want = black76(call, spot * s, strike, t - h, rate, std::max(0.0, vol + dv)).price;
            EXPECT_EQ(option(s, dv), want) << call << " t " << t << " vol " << vol << " s " << s << " dv " << dv;
          }
}
