// CUDA backend equals the CPU backend (runs where a GPU is present; skipped otherwise).
#include <gtest/gtest.h>

#include <cmath>

#include <random>

#include "feeds/vault_state.hpp"
#include "kernels/engine.hpp"
#include "kernels/live_engine.hpp"
#include "kernels/stress.hpp"
#include "kernels/stress_backend.hpp"
#include "test_books.hpp"

using namespace vaultrisk;

namespace {

void expect_close(const std::vector<double>& g, const std::vector<double>& c, const char* what) {
  ASSERT_EQ(g.size(), c.size()) << what;
  for (std::size_t k = 0; k < g.size(); ++k)
    ASSERT_NEAR(g[k], c[k], 1e-12 * (1 + std::fabs(c[k]))) << what << "[" << k << "]";
}

#define REQUIRE_GPU() \
  if (!gpu_available()) GTEST_SKIP() << "no CUDA device (or a build without CUDA): GPU test not run"

}  // namespace

class GpuVsCpu : public ::testing::TestWithParam<int> {};

TEST_P(GpuVsCpu, FullAndIncrementalRevaluationsAgreeWithin1e12) {
  REQUIRE_GPU();
  const auto c = books::random_case(static_cast<std::uint64_t>(GetParam()), 3000);
  Engine gpu(c.book, c.methodology, Device::gpu), cpu(c.book, c.methodology, Device::cpu);
  Market market = c.market;
  gpu.revalue(market);
  cpu.revalue(market);
  for (int step = 0; step < 4; ++step) {
    const InstrumentTable gi = gpu.instruments(), ci = cpu.instruments();
    expect_close(gi.price, ci.price, "price");
    expect_close(gi.delta, ci.delta, "delta");
    expect_close(gi.gamma, ci.gamma, "gamma");
    expect_close(gi.vega, ci.vega, "vega");
    expect_close(gi.theta, ci.theta, "theta");
    expect_close(gi.rho, ci.rho, "rho");
    const BlockResults gb = gpu.blocks(), cb = cpu.blocks();
    expect_close(gb.mtm, cb.mtm, "mtm");
    expect_close(gb.scan, cb.scan, "scan");
    expect_close(gb.mm, cb.mm, "mm");
    expect_close(gb.im, cb.im, "im");
    const AccountTable ga = gpu.accounts(), ca = cpu.accounts();
    expect_close(ga.equity, ca.equity, "equity");
    expect_close(ga.mm, ca.mm, "account mm");
    expect_close(ga.im, ca.im, "account im");
    EXPECT_EQ(ga.status, ca.status);
    const std::string& u = c.book.underlyings[static_cast<std::size_t>(step) % c.book.underlyings.size()];
    market.underlyings[u] = books::moved(market.underlyings[u], 50 + static_cast<std::uint64_t>(step));
    gpu.update_underlying(u, market.underlyings[u]);
    cpu.update_underlying(u, market.underlyings[u]);
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, GpuVsCpu, ::testing::Values(1, 2, 3));

TEST(Gpu, IncrementalEqualsFullOnTheDevice) {
  REQUIRE_GPU();
  const auto c = books::random_case(21, 2000);
  Market market = c.market;
  Engine inc(c.book, c.methodology, Device::gpu);
  inc.revalue(market);
  market.underlyings["BBB"] = books::moved(market.underlyings["BBB"], 3);
  inc.update_underlying("BBB", market.underlyings["BBB"]);
  Engine full(c.book, c.methodology, Device::gpu);
  full.revalue(market);
  EXPECT_EQ(inc.accounts().equity, full.accounts().equity);
  EXPECT_EQ(inc.accounts().mm, full.accounts().mm);
  EXPECT_EQ(inc.blocks().scan, full.blocks().scan);
}

TEST(Gpu, CashUpdateEqualsFullOnTheDevice) {
  REQUIRE_GPU();
  auto c = books::random_case(22, 2000);
  Engine inc(c.book, c.methodology, Device::gpu);
  inc.revalue(c.market);
  for (std::size_t a = 0; a < c.book.account_count(); a += 3) c.book.cash[a] -= 1234.5 + static_cast<double>(a);
  inc.update_cash(c.book.cash);
  Engine full(c.book, c.methodology, Device::gpu);
  full.revalue(c.market);
  EXPECT_EQ(inc.accounts().equity, full.accounts().equity);
  EXPECT_EQ(inc.accounts().status, full.accounts().status);
}

// Stress (SPEC §8) on the device against the CPU, the same seed: cuRAND's device and
// host generators give the same normals, so every figure agrees to rounding.
// The change scan compacted on the device (copy_if, a pack, one copy off) finds the
// accounts the CPU finds, with the same numbers within 1e-12, through a cash change
// and a tick.
TEST(Gpu, ChangeScanOnTheDeviceAgreesWithTheCpu) {
  REQUIRE_GPU();
  auto c = books::random_case(31, 5000);
  Engine gpu(c.book, c.methodology, Device::gpu), cpu(c.book, c.methodology, Device::cpu);
  gpu.revalue(c.market);
  cpu.revalue(c.market);
  auto same = [](const std::vector<AccountChange>& g, const std::vector<AccountChange>& k, const char* what) {
    ASSERT_EQ(g.size(), k.size()) << what;
    ASSERT_FALSE(g.empty()) << what;
    for (std::size_t i = 0; i < g.size(); ++i) {
      ASSERT_EQ(g[i].account, k[i].account) << what;
      EXPECT_EQ(g[i].status, k[i].status) << what;
      EXPECT_EQ(g[i].reported, k[i].reported) << what;
      EXPECT_NEAR(g[i].equity, k[i].equity, 1e-12 * (1 + std::fabs(k[i].equity))) << what;
      EXPECT_NEAR(g[i].mm, k[i].mm, 1e-12 * (1 + std::fabs(k[i].mm))) << what;
    }
  };
  same(gpu.take_status_changes(), cpu.take_status_changes(), "first take");
  EXPECT_TRUE(gpu.take_status_changes().empty());
  const AccountTable t = cpu.accounts();
  for (std::size_t a = 0; a < c.book.account_count(); a += 3) c.book.cash[a] -= 2.0 * std::fabs(t.mm[a]) + 10.0;
  gpu.update_cash(c.book.cash);
  cpu.update_cash(c.book.cash);
  same(gpu.take_status_changes(), cpu.take_status_changes(), "after cash moved");
  const std::string& u = c.book.underlyings.front();
  c.market.underlyings[u] = books::moved(c.market.underlyings[u], 9);
  gpu.update_underlying(u, c.market.underlyings[u]);
  cpu.update_underlying(u, c.market.underlyings[u]);
  const auto g = gpu.take_status_changes(), k = cpu.take_status_changes();
  ASSERT_EQ(g.size(), k.size());
  const std::vector<std::int32_t> ids = {0, 17, 4999};
  same(gpu.accounts(ids), cpu.accounts(ids), "gathered");
}

TEST(Gpu, StressMonteCarloAndNamedAgreeWithTheCpu) {
  if (!gpu_available()) GTEST_SKIP() << "no CUDA device (or a build without CUDA): GPU test not run";
  if (!detail::curand_available()) GTEST_SKIP() << "no cuRAND in this build";
  const books::Case c = books::random_case(21, 5000);
  StressSpec spec;
  spec.source = StressSource::monte_carlo;
  spec.horizon_days = 2;
  const auto n = c.book.underlyings.size();
  spec.monte_carlo.paths = 3000;
  spec.monte_carlo.seed = 17;
  spec.monte_carlo.sigma.assign(n, 0.7);
  spec.monte_carlo.vol_of_vol.assign(n, 0.5);
  spec.monte_carlo.correlation.assign(n * n, 0.3);
  for (std::size_t u = 0; u < n; ++u) spec.monte_carlo.correlation[u * n + u] = 1.0;
  spec.monte_carlo.spot_vol_correlation = -0.4;
  const StressResult cpu = run_stress(c.book, c.market, c.methodology, spec, Device::cpu);
  const StressResult gpu = run_stress(c.book, c.market, c.methodology, spec, Device::gpu);
  const auto near = [](double a, double b) { return std::fabs(a - b) <= 1e-9 * (1.0 + std::fabs(b)); };
  for (std::size_t i = 0; i < cpu.spot_mult.size(); ++i) ASSERT_TRUE(near(gpu.spot_mult[i], cpu.spot_mult[i])) << i;
  for (std::size_t i = 0; i < cpu.vault_pnl.size(); ++i) ASSERT_TRUE(near(gpu.vault_pnl[i], cpu.vault_pnl[i])) << i;
  for (std::size_t a = 0; a < cpu.es.size(); ++a) {
    ASSERT_TRUE(near(gpu.var[a], cpu.var[a])) << a;
    ASSERT_TRUE(near(gpu.es[a], cpu.es[a])) << a;
    ASSERT_EQ(gpu.insolvent_scenarios[a], cpu.insolvent_scenarios[a]) << a;
  }
  EXPECT_TRUE(near(gpu.vault_es, cpu.vault_es));
  EXPECT_TRUE(near(gpu.bad_debt_es, cpu.bad_debt_es));
}

// LiveEngine on the device (issue #10): accounts opened, positions opened and closed,
// trades in place, ticks and a background layout swapped in, against a fresh device
// layout of the same book, bit for bit (the same kernels over the same order).
TEST(Gpu, LiveEngineOnTheDeviceEqualsAFreshLayout) {
  REQUIRE_GPU();
  auto c = books::random_case(37, 2000);
  feeds::VaultState vault(c.book);
  LiveEngineOptions opt;
  opt.merge_accounts = 1u << 30;
  opt.merge_after_s = 1e9;
  LiveEngine live(vault.book(), c.methodology, Device::gpu, c.market, opt);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 1200; ++i) {
    const Book& b = vault.book();
    feeds::VaultEvent e;
    e.id = std::to_string(i);
    const std::uint64_t r = rng() % 20;
    if (r == 0) {
      const std::string& u = b.underlyings[rng() % b.underlyings.size()];
      c.market.underlyings[u] = books::moved(c.market.underlyings[u], 900 + static_cast<std::uint64_t>(i));
      live.update_underlying(u, c.market.underlyings[u]);
      continue;
    }
    if (r == 1) {
      e.type = feeds::EventType::deposit;
      e.account = 800000 + static_cast<std::uint64_t>(i);
      e.amount = 5000;
    } else {
      e.type = feeds::EventType::trade;
      const std::size_t p = rng() % b.position_count();
      e.account = b.account_id[static_cast<std::size_t>(b.pos_account[p])];
      e.instrument = b.instrument_id[static_cast<std::size_t>(b.pos_instrument[p])];
      e.quantity = r == 2 ? -b.pos_quantity[p] : 0.5;  // close it, or add to it
      if (r >= 17) {  // a new position of a late account
        e.account = b.account_id[b.account_count() - 1 - rng() % 5];
        e.instrument = b.instrument_id[rng() % b.instrument_count()];
        e.quantity = 1.5;
        for (const std::size_t q : vault.positions_of(vault.account_index(e.account)))
          if (b.instrument_id[static_cast<std::size_t>(b.pos_instrument[q])] == e.instrument) e.quantity = 2.0;
      }
      e.price = 1.0 + static_cast<double>(rng() % 4000) / 16.0;
    }
    vault.apply(e);
    live.apply(vault.book(), vault.take_touched());
    if (i % 400 == 100) live.merge(vault.book());
    if (i % 400 == 300) {
      ASSERT_TRUE(live.finish_merge(vault.book()).has_value());
    }
    if (i % 200 == 199) {
      Engine fresh(vault.book(), c.methodology, Device::gpu);
      fresh.revalue(c.market);
      const AccountTable got = live.accounts(), want = fresh.accounts();
      ASSERT_EQ(got.equity, want.equity) << "after event " << i;
      ASSERT_EQ(got.mm, want.mm) << "after event " << i;
      ASSERT_EQ(got.im, want.im) << "after event " << i;
      ASSERT_EQ(got.status, want.status) << "after event " << i;
    }
  }
  EXPECT_EQ(live.stats().merges, 3u);
}
