// Margin of small portfolios, against values the test derives itself: QuantLib's
// blackFormula for option values and SPEC §4 written out by hand.
#include <gtest/gtest.h>
#include <ql/pricingengines/blackformula.hpp>

#include <cmath>
#include <vector>

#include "kernels/engine.hpp"

using namespace vaultrisk;
namespace ql = QuantLib;

namespace {

constexpr double kNow = 1767225600;
constexpr double kDay = 86400;

struct Leg {
  bool perp;
  bool call;
  double strike, expiry, qty, entry;
};

struct Und {
  double spot, rate, confidence;
  std::vector<std::pair<double, double>> flat_vols;  // (expiry, sigma): SVI with b = 0
};

UnderlyingMarket market_of(const Und& u) {
  UnderlyingMarket m;
  m.spot = u.spot;
  m.rate = u.rate;
  m.confidence = u.confidence;
  m.time = kNow;
  for (auto [expiry, sigma] : u.flat_vols) {
    const double t = (expiry - kNow) / 31536000.0;
    m.expiries.push_back({expiry, SviParams{sigma * sigma * t, 0.0, 0.0, 0.0, 0.0}});
  }
  return m;
}

struct Expected {
  double mtm, scan;
  int worst;
  double mm, im;
};

// SPEC §4 by hand for one (account, underlying), default methodology.
Expected expected_block(const std::vector<Leg>& legs, const Und& u) {
  const double s_core[] = {0.865, 0.91, 0.955, 1, 1.045, 1.09, 1.135};
  struct Sc { double s; int vol; double d; };
  std::vector<Sc> grid;
  for (double s : s_core)
    for (int v : {1, 0, -1}) grid.push_back({s, v, 1.0});
  grid.push_back({0.82, 1, 1.0});
  grid.push_back({1.18, 1, 1.0});
  const double es[] = {0.34, 0.67, 1.5, 2, 3, 4, 5, 6};
  const double ed[] = {0.21, 0.42, 0.2772, 0.1386, 0.0693, 0.0462, 0.03465, 0.02772};
  for (int k = 0; k < 8; ++k) grid.push_back({es[k], 1, ed[k]});

  auto value = [&](const Leg& l, double s, int vol_mode) {
    if (l.perp) return l.qty * (u.spot * s - l.entry);
    const double tte = l.expiry - kNow, t = tte / 31536000.0;
    if (t <= 0) return l.qty * std::max(0.0, l.call ? u.spot * s - l.strike : l.strike - u.spot * s);
    double sigma = 0;
    for (auto [e, v] : u.flat_vols)
      if (e == l.expiry) sigma = v;
    const double m = std::pow(2592000.0 / std::max(tte, 86400.0), tte <= 2592000 ? 0.3 : 0.13);
    if (vol_mode > 0) sigma = std::max(0.4, sigma * (1 + 0.5 * m));
    if (vol_mode < 0) sigma = sigma * std::max(0.0, 1 - 0.3 * m);
    const double f = u.spot * std::exp(u.rate * t) * s;
    return l.qty * ql::blackFormula(l.call ? ql::Option::Call : ql::Option::Put, l.strike, f,
                                    sigma * std::sqrt(t), std::exp(-u.rate * t));
  };
  Expected e{0, 0, -1, 0, 0};
  for (const Leg& l : legs) e.mtm += value(l, 1.0, 0);
  for (std::size_t j = 0; j < grid.size(); ++j) {
    double mtm_j = 0;
    for (const Leg& l : legs) mtm_j += value(l, grid[j].s, grid[j].vol);
    const double pnl = (mtm_j - e.mtm) * grid[j].d;
    if (pnl < e.scan - 1e-9 * std::max(1.0, std::fabs(e.scan))) {
      e.scan = pnl;
      e.worst = static_cast<int>(j);
    }
  }
  double perp = 0, shrt = 0, gross = 0;
  for (const Leg& l : legs) {
    if (l.perp) perp += std::fabs(l.qty);
    else shrt += std::max(0.0, -l.qty);
    gross += std::fabs(l.qty);
  }
  const double mmc = 0.03 * perp * u.spot + 0.003 * shrt * u.spot;
  const double imc = mmc + 0.01 * perp * u.spot + 0.002 * shrt * u.spot +
                     (u.confidence < 0.55 ? (1 - u.confidence) * gross * u.spot : 0.0);
  e.mm = -0.8 * e.scan + mmc;
  e.im = -1.0 * e.scan + imc;
  return e;
}

struct MarginRun {
  BlockResults blocks;
  AccountTable accounts;
};

// One account holding `legs` on underlying "BTC".
MarginRun run_single(const std::vector<Leg>& legs, const Und& u, double cash) {
  BookBuilder b;
  const auto a = b.add_account(42, cash);
  int k = 0;
  for (const Leg& l : legs) {
    const std::string id = "I" + std::to_string(k++);
    const auto i = l.perp ? b.add_perp(id, "BTC") : b.add_option(id, "BTC", l.expiry, l.strike, l.call);
    b.add_position(a, i, l.qty, l.entry);
  }
  Book book = std::move(b).build();
  Engine engine(book, default_methodology(), Device::cpu);
  Market m;
  m.time = kNow;
  m.underlyings["BTC"] = market_of(u);
  engine.revalue(m);
  return {engine.blocks(), engine.accounts()};
}

void expect_matches(const MarginRun& r, const Expected& e, double cash) {
  const double tol = 1e-9 * std::max(1.0, std::fabs(e.mm) + std::fabs(e.mtm));
  ASSERT_EQ(r.blocks.mtm.size(), 1u);
  EXPECT_NEAR(r.blocks.mtm[0], e.mtm, tol);
  EXPECT_NEAR(r.blocks.scan[0], e.scan, tol);
  EXPECT_EQ(r.blocks.worst[0], e.worst);
  EXPECT_NEAR(r.blocks.mm[0], e.mm, tol);
  EXPECT_NEAR(r.blocks.im[0], e.im, tol);
  EXPECT_NEAR(r.accounts.equity[0], cash + e.mtm, tol);
  EXPECT_NEAR(r.accounts.mm_surplus[0], cash + e.mtm - e.mm, tol);
  EXPECT_NEAR(r.accounts.im_surplus[0], cash + e.mtm - e.im, tol);
}

const Und kBtc{100.0, 0.02, 1.0, {{kNow + 30 * kDay, 0.6}, {kNow + 90 * kDay, 0.5}}};

}  // namespace

TEST(Margin, NakedShortCall) {
  const std::vector<Leg> legs{{false, true, 110, kNow + 30 * kDay, -1, 0}};
  const Expected e = expected_block(legs, kBtc);
  const MarginRun r = run_single(legs, kBtc, 50);
  expect_matches(r, e, 50);
  EXPECT_LT(e.scan, 0);
  EXPECT_GT(e.worst, 0);
}

TEST(Margin, ShortPerpMatchesHandArithmetic) {
  // q = -2, S = 100, entry 90: MtM = -20. Worst: spot x1.18 -> PnL -2*100*0.18 = -36
  // (every extended scenario gives -27.72). MM = 0.8*36 + 0.03*2*100 = 34.8,
  // IM = 36 + 6 + 0.01*2*100 = 44.
  const std::vector<Leg> legs{{true, false, 0, 0, -2, 90}};
  const MarginRun r = run_single(legs, kBtc, 100);
  EXPECT_DOUBLE_EQ(r.blocks.mtm[0], -20);
  EXPECT_NEAR(r.blocks.scan[0], -36, 1e-12);
  EXPECT_EQ(r.blocks.worst[0], 22);
  EXPECT_NEAR(r.blocks.mm[0], 34.8, 1e-12);
  EXPECT_NEAR(r.blocks.im[0], 44, 1e-12);
  EXPECT_NEAR(r.blocks.delta[0], -2, 0);
  EXPECT_NEAR(r.accounts.equity[0], 80, 1e-12);
  EXPECT_EQ(r.accounts.status[0], static_cast<std::uint8_t>(AccountStatus::healthy));
  expect_matches(r, expected_block(legs, kBtc), 100);
}

TEST(Margin, CoveredCallIsCheaperThanItsLegs) {
  const std::vector<Leg> call{{false, true, 110, kNow + 30 * kDay, -1, 0}};
  const std::vector<Leg> perp{{true, false, 0, 0, 1, 100}};
  const std::vector<Leg> covered{call[0], perp[0]};
  const Expected e = expected_block(covered, kBtc);
  expect_matches(run_single(covered, kBtc, 10), e, 10);
  EXPECT_LT(e.mm, expected_block(call, kBtc).mm + expected_block(perp, kBtc).mm);
}

TEST(Margin, CalendarSpreadUsesEachExpirySlice) {
  const std::vector<Leg> legs{{false, true, 100, kNow + 30 * kDay, -1, 0},
                              {false, true, 100, kNow + 90 * kDay, 1, 0}};
  const Expected e = expected_block(legs, kBtc);
  const MarginRun r = run_single(legs, kBtc, 5);
  expect_matches(r, e, 5);
  EXPECT_GT(r.blocks.mtm[0], 0);  // long the longer-dated call
}

TEST(Margin, ExpiredPutIsIntrinsicAtShockedSpot) {
  // Two expired puts K = 120 at S = 100: MtM 2*20 = 40, no slice needed.
  // s = 1.18: 2*(2 - 20) = -36 is the worst; MM = 28.8, IM = 36.
  const std::vector<Leg> legs{{false, false, 120, kNow - kDay, 2, 0}};
  const Und und{100.0, 0.02, 1.0, {}};
  const MarginRun r = run_single(legs, und, 0);
  EXPECT_DOUBLE_EQ(r.blocks.mtm[0], 40);
  EXPECT_NEAR(r.blocks.scan[0], -36, 1e-12);
  EXPECT_EQ(r.blocks.worst[0], 22);
  EXPECT_NEAR(r.blocks.mm[0], 28.8, 1e-12);
  EXPECT_NEAR(r.blocks.im[0], 36, 1e-12);
  EXPECT_EQ(r.blocks.delta[0], 0);
  expect_matches(r, expected_block(legs, und), 0);
}

TEST(Margin, LowConfidenceAddsGrossNotionalToInitialMarginOnly) {
  Und low = kBtc;
  low.confidence = 0.5;
  const std::vector<Leg> legs{{true, false, 0, 0, 1, 100}, {false, false, 90, kNow + 30 * kDay, -3, 0}};
  const Expected hi_conf = expected_block(legs, kBtc), lo_conf = expected_block(legs, low);
  expect_matches(run_single(legs, low, 1000), lo_conf, 1000);
  EXPECT_DOUBLE_EQ(lo_conf.mm, hi_conf.mm);
  EXPECT_NEAR(lo_conf.im - hi_conf.im, 0.5 * 4 * 100, 1e-9);  // (1 - c) * gross * S
}

TEST(Margin, StatusFollowsSurpluses) {
  const std::vector<Leg> legs{{true, false, 0, 0, -2, 90}};  // MtM -20, MM 34.8, IM 44
  EXPECT_EQ(run_single(legs, kBtc, 65).accounts.status[0], static_cast<std::uint8_t>(AccountStatus::healthy));
  EXPECT_EQ(run_single(legs, kBtc, 60).accounts.status[0], static_cast<std::uint8_t>(AccountStatus::margin_call));
  EXPECT_EQ(run_single(legs, kBtc, 50).accounts.status[0], static_cast<std::uint8_t>(AccountStatus::liquidatable));
}

TEST(Margin, AccountSumsItsUnderlyingsAndEmptyAccountIsHealthy) {
  BookBuilder b;
  const auto a = b.add_account(7, 1000);
  b.add_account(8, -1);  // holds nothing
  b.add_position(a, b.add_perp("ETH-PERP", "ETH"), 3, 2000);
  b.add_position(a, b.add_option("BTC-C", "BTC", kNow + 30 * kDay, 110, true), -1);
  Book book = std::move(b).build();
  Market m;
  m.time = kNow;
  m.underlyings["BTC"] = market_of(kBtc);
  m.underlyings["ETH"] = market_of(Und{2100, 0, 1, {}});
  Engine engine(book, default_methodology(), Device::cpu);
  engine.revalue(m);
  const BlockResults blocks = engine.blocks();
  const AccountTable acc = engine.accounts();
  ASSERT_EQ(blocks.mtm.size(), 2u);
  EXPECT_EQ(book.underlyings[blocks.underlying[0]], "BTC");  // ordered by name
  EXPECT_EQ(book.underlyings[blocks.underlying[1]], "ETH");
  const Expected btc = expected_block({{false, true, 110, kNow + 30 * kDay, -1, 0}}, kBtc);
  const Expected eth = expected_block({{true, false, 0, 0, 3, 2000}}, Und{2100, 0, 1, {}});
  EXPECT_NEAR(acc.equity[0], 1000 + btc.mtm + eth.mtm, 1e-9);
  EXPECT_NEAR(acc.mm[0], btc.mm + eth.mm, 1e-9);
  EXPECT_NEAR(acc.im[0], btc.im + eth.im, 1e-9);
  // No positions: equity is cash, no margin; negative cash is then liquidatable.
  EXPECT_EQ(acc.equity[1], -1);
  EXPECT_EQ(acc.mm[1], 0);
  EXPECT_EQ(acc.status[1], static_cast<std::uint8_t>(AccountStatus::liquidatable));
}
