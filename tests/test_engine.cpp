// The engine (CPU backend) against the sequential reference; incremental == full.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.hpp"
#include "feeds/vault_state.hpp"
#include "kernels/engine.hpp"
#include "kernels/live_engine.hpp"
#include "kernels/reference.hpp"
#include "test_books.hpp"

using namespace vaultrisk;
using books::random_case;

namespace {

void expect_near_all(const std::vector<double>& a, const std::vector<double>& b, double rel, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t k = 0; k < a.size(); ++k)
    ASSERT_NEAR(a[k], b[k], rel * (1.0 + std::fabs(b[k]))) << what << "[" << k << "]";
}

void expect_identical(const Engine& x, const Engine& y) {
  const InstrumentTable ix = x.instruments(), iy = y.instruments();
  const BlockResults bx = x.blocks(), by = y.blocks();
  const AccountTable ax = x.accounts(), ay = y.accounts();
  EXPECT_EQ(ix.price, iy.price);
  EXPECT_EQ(ix.vol, iy.vol);
  EXPECT_EQ(ix.delta, iy.delta);
  EXPECT_EQ(ix.theta, iy.theta);
  EXPECT_EQ(bx.mtm, by.mtm);
  EXPECT_EQ(bx.delta, by.delta);
  EXPECT_EQ(bx.vega, by.vega);
  EXPECT_EQ(bx.scan, by.scan);
  EXPECT_EQ(bx.worst, by.worst);
  EXPECT_EQ(bx.mm, by.mm);
  EXPECT_EQ(bx.im, by.im);
  EXPECT_EQ(ax.equity, ay.equity);
  EXPECT_EQ(ax.mm, ay.mm);
  EXPECT_EQ(ax.im, ay.im);
  EXPECT_EQ(ax.mm_surplus, ay.mm_surplus);
  EXPECT_EQ(ax.im_surplus, ay.im_surplus);
  EXPECT_EQ(ax.status, ay.status);
}

// A trade of `dq` on held position p, nudged so that it never takes it to zero (which
// would close it): sets the event's account and instrument, returns the quantity.
double trade_held(const Book& b, std::size_t p, double dq, feeds::VaultEvent& e) {
  e.account = b.account_id[static_cast<std::size_t>(b.pos_account[p])];
  e.instrument = b.instrument_id[static_cast<std::size_t>(b.pos_instrument[p])];
  return dq == 0.0 || b.pos_quantity[p] + dq == 0.0 ? dq + 0.25 : dq;
}

}  // namespace

class EngineVsReference : public ::testing::TestWithParam<int> {};

TEST_P(EngineVsReference, AllOutputsAgreeToOnePartInABillion) {
  const auto c = random_case(static_cast<std::uint64_t>(GetParam()), 400);
  Engine engine(c.book, c.methodology, Device::cpu);
  engine.revalue(c.market);
  const auto ref = reference::revalue(c.book, c.market, c.methodology);
  const InstrumentTable it = engine.instruments();
  expect_near_all(it.price, ref.instruments.price, 1e-12, "price");
  expect_near_all(it.vol, ref.instruments.vol, 1e-12, "vol");
  expect_near_all(it.delta, ref.instruments.delta, 1e-12, "delta");
  expect_near_all(it.gamma, ref.instruments.gamma, 1e-12, "gamma");
  expect_near_all(it.vega, ref.instruments.vega, 1e-12, "vega");
  expect_near_all(it.theta, ref.instruments.theta, 1e-12, "theta");
  expect_near_all(it.rho, ref.instruments.rho, 1e-12, "rho");

  const BlockResults b = engine.blocks();
  ASSERT_EQ(b.account, ref.blocks.account);
  ASSERT_EQ(b.underlying, ref.blocks.underlying);
  expect_near_all(b.mtm, ref.blocks.mtm, 1e-9, "mtm");
  expect_near_all(b.delta, ref.blocks.delta, 1e-9, "block delta");
  expect_near_all(b.gamma, ref.blocks.gamma, 1e-9, "block gamma");
  expect_near_all(b.vega, ref.blocks.vega, 1e-9, "block vega");
  expect_near_all(b.theta, ref.blocks.theta, 1e-9, "block theta");
  expect_near_all(b.rho, ref.blocks.rho, 1e-9, "block rho");
  expect_near_all(b.scan, ref.blocks.scan, 1e-9, "scan");
  expect_near_all(b.mm, ref.blocks.mm, 1e-9, "mm");
  expect_near_all(b.im, ref.blocks.im, 1e-9, "im");
  for (std::size_t k = 0; k < b.worst.size(); ++k) {
    if (b.worst[k] < 0) {
      EXPECT_EQ(ref.blocks.worst[k], -1);
      continue;
    }
    // The engine's worst scenario is a minimiser of the reference's PnL vector.
    EXPECT_NEAR(ref.block_pnl[k][b.worst[k]], ref.blocks.scan[k], 1e-9 * (1 + std::fabs(ref.blocks.scan[k])));
  }
  const AccountTable a = engine.accounts();
  expect_near_all(a.equity, ref.accounts.equity, 1e-9, "equity");
  expect_near_all(a.mm, ref.accounts.mm, 1e-9, "account mm");
  expect_near_all(a.im, ref.accounts.im, 1e-9, "account im");
  expect_near_all(a.mm_surplus, ref.accounts.mm_surplus, 1e-9, "mm_surplus");
  expect_near_all(a.im_surplus, ref.accounts.im_surplus, 1e-9, "im_surplus");
  EXPECT_EQ(a.status, ref.accounts.status);
  // The random cases are meant to exercise every status.
  for (std::uint8_t s = 0; s < 3; ++s)
    EXPECT_NE(std::count(a.status.begin(), a.status.end(), s), 0) << "status " << int(s);
}

INSTANTIATE_TEST_SUITE_P(Seeds, EngineVsReference, ::testing::Values(1, 2, 3, 4, 5));

TEST(Incremental, EachUnderlyingUpdateEqualsAFullRevaluationBitForBit) {
  const auto c = random_case(11, 500);
  Market market = c.market;
  Engine incremental(c.book, c.methodology, Device::cpu);
  incremental.revalue(market);
  std::uint64_t seed = 100;
  for (int round = 0; round < 3; ++round) {
    for (const std::string& name : c.book.underlyings) {
      market.underlyings[name] = books::moved(market.underlyings[name], ++seed);
      ASSERT_TRUE(incremental.update_underlying(name, market.underlyings[name]));
      Engine full(c.book, c.methodology, Device::cpu);
      full.revalue(market);
      expect_identical(incremental, full);
    }
  }
}

TEST(Incremental, CashUpdateEqualsAFullRevaluationBitForBit) {
  auto c = random_case(13, 400);
  Engine incremental(c.book, c.methodology, Device::cpu);
  incremental.revalue(c.market);
  std::mt19937_64 rng(5);
  for (int round = 0; round < 3; ++round) {
    for (std::size_t a = 0; a < c.book.account_count(); a += 1 + rng() % 7)
      c.book.cash[a] += (static_cast<double>(rng() % 2000001) - 1000000.0) / 7.0;
    incremental.update_cash(c.book.cash);
    Engine full(c.book, c.methodology, Device::cpu);
    full.revalue(c.market);
    expect_identical(incremental, full);
  }
  std::vector<double> bad = c.book.cash;
  bad[3] = std::nan("");
  EXPECT_THROW(incremental.update_cash(bad), input_error);
}

// Vault events applied in place (issue #10): deposits, withdrawals and trades on held
// positions go through VaultState::take_touched and Engine::update_positions; new
// and closed positions lay the book out again, as the service does. Every 150
// events the engine must equal a fresh layout of the same book, bit for bit.
TEST(InPlace, ALongRandomEventSequenceEqualsAFreshLayoutBitForBit) {
  const auto c = random_case(23, 300);
  feeds::VaultState vault(c.book);
  auto engine = std::make_unique<Engine>(vault.book(), c.methodology, Device::cpu);
  engine->revalue(c.market);
  std::mt19937_64 rng(42);
  int in_place = 0, laid_out = 0, compared = 0;
  for (int i = 0; i < 3000; ++i) {
    const Book& b = vault.book();
    feeds::VaultEvent e;
    e.id = std::to_string(i);  // (not "e" + ...: GCC 12 -O3 warns falsely, -Wrestrict)
    const std::uint64_t r = rng() % 20;
    if (r < 4) {
      e.type = r < 3 ? feeds::EventType::deposit : feeds::EventType::withdraw;
      e.account = b.account_id[rng() % b.account_count()];
      e.amount = 0.5 + static_cast<double>(rng() % 100000) / 7.0;
    } else {
      e.type = feeds::EventType::trade;
      std::size_t p = rng() % b.position_count();
      double dq = static_cast<double>(static_cast<std::int64_t>(rng() % 2001) - 1000) / 100.0;
      if (r == 19) {  // open a new position (or close one when the pair is held)
        const std::size_t a = rng() % b.account_count(), ins = rng() % b.instrument_count();
        e.account = b.account_id[a];
        e.instrument = b.instrument_id[ins];
        dq = 1.0;
        for (std::size_t q = 0; q < b.position_count(); ++q)
          if (static_cast<std::size_t>(b.pos_account[q]) == a && static_cast<std::size_t>(b.pos_instrument[q]) == ins)
            dq = -b.pos_quantity[q];
      } else {
        dq = trade_held(b, p, dq, e);
      }
      e.quantity = dq;
      e.price = 1.0 + static_cast<double>(rng() % 5000) / 16.0;
    }
    vault.apply(e);
    const bool structural = vault.take_structural_change();
    const feeds::VaultState::Touched touched = vault.take_touched();
    if (structural) {
      engine = std::make_unique<Engine>(vault.book(), c.methodology, Device::cpu);
      engine->revalue(c.market);
      ++laid_out;
    } else {
      ASSERT_FALSE(touched.accounts.empty()) << "event " << i << " changed nothing";
      engine->update_positions(vault.book(), touched.positions, touched.accounts);
      ++in_place;
    }
    if (i % 150 == 149) {
      Engine fresh(vault.book(), c.methodology, Device::cpu);
      fresh.revalue(c.market);
      expect_identical(*engine, fresh);
      ++compared;
      if (HasFailure()) FAIL() << "differs from a fresh layout after event " << i;
    }
  }
  EXPECT_GT(in_place, 2500);
  EXPECT_GT(laid_out, 50);
  EXPECT_EQ(compared, 20);
  // A held position traded is in place; its index is reported, with its account.
  const Book& b = vault.book();
  feeds::VaultEvent e;
  e.type = feeds::EventType::trade;
  e.id = "last";
  e.account = b.account_id[static_cast<std::size_t>(b.pos_account[7])];
  e.instrument = b.instrument_id[static_cast<std::size_t>(b.pos_instrument[7])];
  e.quantity = b.pos_quantity[7] > 0 ? 1.0 : -1.0;
  e.price = 10.0;
  vault.apply(e);
  EXPECT_FALSE(vault.take_structural_change());
  const feeds::VaultState::Touched t = vault.take_touched();
  EXPECT_EQ(t.positions, std::vector<std::int64_t>{7});
  EXPECT_EQ(t.accounts, std::vector<std::int32_t>{b.pos_account[7]});
}

// The per-tick change scan (issue #10): take_status_changes returns exactly the
// accounts whose status differs from the one last taken, in account order, each
// with the numbers of the full account table, bit for bit; a second take is empty;
// accounts() gathers any set of them. The reference is two full downloads.
namespace {
void expect_changes(const std::vector<AccountChange>& got, const std::vector<std::uint8_t>& before, const AccountTable& now,
                    const char* what) {
  std::vector<std::int32_t> want;
  for (std::size_t a = 0; a < now.status.size(); ++a)
    if (now.status[a] != before[a]) want.push_back(static_cast<std::int32_t>(a));
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t k = 0; k < got.size(); ++k) {
    const auto a = static_cast<std::size_t>(want[k]);
    ASSERT_EQ(got[k].account, want[k]) << what;
    EXPECT_EQ(got[k].status, now.status[a]) << what;
    EXPECT_EQ(got[k].reported, before[a]) << what;
    EXPECT_EQ(got[k].equity, now.equity[a]) << what;
    EXPECT_EQ(got[k].mm, now.mm[a]) << what;
    EXPECT_EQ(got[k].im, now.im[a]) << what;
    EXPECT_EQ(got[k].mm_surplus, now.mm_surplus[a]) << what;
    EXPECT_EQ(got[k].im_surplus, now.im_surplus[a]) << what;
  }
}
}  // namespace

TEST(ChangeScan, ReturnsExactlyTheChangedAccountsWithTheirNumbers) {
  auto c = random_case(17, 600);
  Engine e(c.book, c.methodology, Device::cpu);
  e.revalue(c.market);
  const std::vector<std::uint8_t> healthy(c.book.account_count(), 0);
  AccountTable t = e.accounts();
  ASSERT_GT(std::count_if(t.status.begin(), t.status.end(), [](std::uint8_t s) { return s != 0; }), 0);
  expect_changes(e.take_status_changes(), healthy, t, "first take (against healthy)");
  EXPECT_TRUE(e.take_status_changes().empty()) << "nothing changed since the last take";
  // Cash taken from every third account and given to every fifth: statuses move both ways.
  std::vector<std::uint8_t> before = t.status;
  for (std::size_t a = 0; a < c.book.account_count(); a += 3) c.book.cash[a] -= 2.0 * std::fabs(t.mm[a]) + 10.0;
  for (std::size_t a = 1; a < c.book.account_count(); a += 5) c.book.cash[a] += 4.0 * std::fabs(t.im[a]) + 10.0;
  e.update_cash(c.book.cash);
  t = e.accounts();
  expect_changes(e.take_status_changes(), before, t, "after cash moved");
  // A market move of one underlying, incrementally.
  before = t.status;
  const std::string& u = c.book.underlyings.front();
  c.market.underlyings[u] = books::moved(c.market.underlyings[u], 77);
  e.update_underlying(u, c.market.underlyings[u]);
  t = e.accounts();
  expect_changes(e.take_status_changes(), before, t, "after a tick");
  // The caller's own view (a restart, a new layout): what differs from it comes back.
  std::vector<std::uint8_t> view(c.book.account_count(), 2);
  e.set_reported_statuses(view);
  expect_changes(e.take_status_changes(), view, t, "against the caller's view");
  // Any set of accounts, gathered in one go, in the order asked.
  const std::vector<std::int32_t> some = {5, 0, 599, 5};
  const std::vector<AccountChange> rows = e.accounts(some);
  ASSERT_EQ(rows.size(), some.size());
  for (std::size_t k = 0; k < some.size(); ++k) {
    const auto a = static_cast<std::size_t>(some[k]);
    EXPECT_EQ(rows[k].account, some[k]);
    EXPECT_EQ(rows[k].status, t.status[a]);
    EXPECT_EQ(rows[k].equity, t.equity[a]);
    EXPECT_EQ(rows[k].im_surplus, t.im_surplus[a]);
  }
  EXPECT_THROW(e.accounts({600}), std::out_of_range);
  EXPECT_THROW(e.set_reported_statuses({1, 2}), std::invalid_argument);
}

// After trades in place alone, the change scan looks only at the accounts they
// recomputed; a tick, new cash or a reset view in between brings back the full scan.
// Either way nothing is missed: every take equals the difference of two full
// downloads, over a long random mix of trades, deposits and ticks.
TEST(ChangeScan, AfterTradesInPlaceOnlyTradedAccountsAreScannedAndNothingIsMissed) {
  auto c = random_case(31, 400);
  feeds::VaultState vault(c.book);
  vault.take_structural_change();  // the first layout is below
  vault.take_touched();
  Engine e(vault.book(), c.methodology, Device::cpu);
  e.revalue(c.market);
  std::vector<std::uint8_t> seen(vault.book().account_count(), 0);
  std::mt19937_64 rng(9);
  int scans = 0, moved = 0;
  for (int i = 0; i < 1500; ++i) {
    const Book& b = vault.book();
    const std::uint64_t r = rng() % 40;
    if (r == 0) {  // a tick on one underlying
      const std::string& u = b.underlyings[rng() % b.underlyings.size()];
      c.market.underlyings[u] = books::moved(c.market.underlyings[u], static_cast<int>(rng() % 1000));
      e.update_underlying(u, c.market.underlyings[u]);
    } else if (r == 1) {  // the caller's view reset (a restart)
      for (auto& x : seen) x = static_cast<std::uint8_t>(rng() % 3);
      e.set_reported_statuses(seen);
    } else {  // a trade on a held position, large enough to move statuses, or cash
      feeds::VaultEvent ev;
      ev.id = std::to_string(i);
      const std::size_t p = rng() % b.position_count();
      ev.account = b.account_id[static_cast<std::size_t>(b.pos_account[p])];
      if (r < 8) {
        ev.type = r < 5 ? feeds::EventType::deposit : feeds::EventType::withdraw;
        ev.amount = 1.0 + static_cast<double>(rng() % 200000);
      } else {
        ev.type = feeds::EventType::trade;
        ev.instrument = b.instrument_id[static_cast<std::size_t>(b.pos_instrument[p])];
        ev.quantity = (rng() % 2 ? 1.0 : -1.0) * (0.5 + static_cast<double>(rng() % 400) / 10.0);
        if (b.pos_quantity[p] + ev.quantity == 0.0) ev.quantity += 0.25;
        ev.price = 1.0 + static_cast<double>(rng() % 5000) / 16.0;
      }
      vault.apply(ev);
      ASSERT_FALSE(vault.take_structural_change()) << "event " << i << " r " << r << " q " << ev.quantity << " held "
                                                    << b.pos_quantity[p];
      const feeds::VaultState::Touched t = vault.take_touched();
      e.update_positions(vault.book(), t.positions, t.accounts);
    }
    if (rng() % 3 == 0) {  // a take after one or a few events
      const AccountTable now = e.accounts();
      const std::vector<AccountChange> got = e.take_status_changes();
      expect_changes(got, seen, now, "a take");
      if (HasFailure()) FAIL() << "after event " << i;
      moved += static_cast<int>(got.size());
      seen = now.status;
      ++scans;
    }
  }
  EXPECT_GT(scans, 400);
  EXPECT_GT(moved, 100);  // statuses did move, both ways and by all three kinds of event
}

// A non-finite account is quarantined (status error), never called healthy, and its
// neighbours are valued as before. (NaN < 0 is false: a plain comparison said healthy.)
TEST(Quarantine, NonFiniteAccountsGetStatusErrorAndOthersAreUntouched) {
  auto c = random_case(4, 50);
  Engine clean(c.book, c.methodology, Device::cpu);
  clean.revalue(c.market);
  c.book.cash[7] = std::nan("");
  c.book.cash[9] = INFINITY;
  Engine e(c.book, c.methodology, Device::cpu);
  e.revalue(c.market);
  const auto st = e.statuses(), st0 = clean.statuses();
  EXPECT_EQ(st[7], static_cast<std::uint8_t>(AccountStatus::error));
  EXPECT_EQ(st[9], static_cast<std::uint8_t>(AccountStatus::error));
  for (std::size_t a = 0; a < st.size(); ++a)
    if (a != 7 && a != 9) {
      EXPECT_EQ(st[a], st0[a]) << a;
    }
  const auto ref = reference::revalue(c.book, c.market, c.methodology);
  EXPECT_EQ(ref.accounts.status[7], static_cast<std::uint8_t>(AccountStatus::error));
  EXPECT_EQ(classify_account(1.0, NAN, 0.0), AccountStatus::error);
  EXPECT_EQ(classify_account(1.0, 2.0, 3.0), AccountStatus::liquidatable);
  EXPECT_EQ(classify_account(2.5, 2.0, 3.0), AccountStatus::margin_call);
  EXPECT_EQ(classify_account(3.0, 2.0, 3.0), AccountStatus::healthy);
}

TEST(Incremental, UnknownUnderlyingIsIgnored) {
  const auto c = random_case(3, 10);
  Engine e(c.book, c.methodology, Device::cpu);
  e.revalue(c.market);
  EXPECT_FALSE(e.update_underlying("ZZZ", c.market.underlyings.at("ZZZ")));
}

TEST(BadMarket, NonPositiveVarianceIsRejectedAndChangesNothing) {
  const auto c = random_case(5, 200);
  Engine e(c.book, c.methodology, Device::cpu);
  e.revalue(c.market);
  Engine before(c.book, c.methodology, Device::cpu);
  before.revalue(c.market);

  UnderlyingMarket bad = c.market.underlyings.at("AAA");
  bad.expiries[2].svi = SviParams{-1.0, 0.01, 0.0, 0.0, 0.1};  // w < 0 everywhere
  try {
    e.update_underlying("AAA", bad);
    FAIL() << "expected input_error";
  } catch (const input_error& err) {
    const std::string msg = err.what();
    EXPECT_NE(msg.find("underlyings.AAA"), std::string::npos) << msg;
    EXPECT_NE(msg.find("instrument 'AAA-"), std::string::npos) << msg;
    EXPECT_NE(msg.find("not positive"), std::string::npos) << msg;
  }
  expect_identical(e, before);

  Market full_bad = c.market;
  full_bad.underlyings["AAA"] = bad;
  EXPECT_THROW(e.revalue(full_bad), input_error);
  expect_identical(e, before);

  // And the engine still works after a rejection.
  const UnderlyingMarket good = books::moved(c.market.underlyings.at("AAA"), 9);
  e.update_underlying("AAA", good);
  Market m2 = c.market;
  m2.underlyings["AAA"] = good;
  Engine full(c.book, c.methodology, Device::cpu);
  full.revalue(m2);
  expect_identical(e, full);
}

TEST(BadMarket, UnexpiredOptionWithoutSliceIsRejected) {
  const auto c = random_case(6, 50);
  Engine e(c.book, c.methodology, Device::cpu);
  UnderlyingMarket m = c.market.underlyings.at("BBB");
  m.expiries.erase(m.expiries.begin() + 1);
  Market market = c.market;
  market.underlyings["BBB"] = m;
  try {
    e.revalue(market);
    FAIL() << "expected input_error";
  } catch (const input_error& err) {
    EXPECT_NE(std::string(err.what()).find("no SVI slice for this expiry"), std::string::npos) << err.what();
  }
}

TEST(BadMarket, ExpiredOptionsNeedNoSlice) {
  const auto c = random_case(6, 50);
  Engine e(c.book, c.methodology, Device::cpu);
  Market market = c.market;
  // Move time past every expiry: no slice is needed at all.
  for (auto& [name, m] : market.underlyings) {
    m.time += 500 * 86400.0;
    m.expiries.clear();
  }
  EXPECT_NO_THROW(e.revalue(market));
  const InstrumentTable t = e.instruments();
  for (double v : t.vega) EXPECT_EQ(v, 0.0);
}

TEST(BadMarket, MissingUnderlyingNamesTheInstrumentThatNeedsIt) {
  const auto c = random_case(7, 20);
  Engine e(c.book, c.methodology, Device::cpu);
  Market market = c.market;
  market.underlyings.erase("CCC");
  try {
    e.revalue(market);
    FAIL();
  } catch (const input_error& err) {
    EXPECT_NE(std::string(err.what()).find("'CCC' is missing (instrument 'CCC-"), std::string::npos) << err.what();
  }
}

TEST(BadMarket, NumbersOutOfRangeAreRejectedBeforeAnyWork) {
  const auto c = random_case(8, 20);
  Engine e(c.book, c.methodology, Device::cpu);
  e.revalue(c.market);
  UnderlyingMarket m = c.market.underlyings.at("AAA");
  for (auto mutate : std::vector<void (*)(UnderlyingMarket&)>{
           [](UnderlyingMarket& x) { x.spot = -1; }, [](UnderlyingMarket& x) { x.spot = NAN; },
           [](UnderlyingMarket& x) { x.confidence = 1.5; }, [](UnderlyingMarket& x) { x.rate = INFINITY; },
           [](UnderlyingMarket& x) { x.expiries[0].svi.rho = 2; }, [](UnderlyingMarket& x) { x.spot = 2e9; },
           [](UnderlyingMarket& x) { x.rate = 0.51; }, [](UnderlyingMarket& x) { x.expiries[0].svi.a = 11; },
           [](UnderlyingMarket& x) { x.expiries[0].expiry = 5e9; },
           [](UnderlyingMarket& x) { x.expiries[1].expiry = x.expiries[0].expiry; }}) {
    UnderlyingMarket bad = m;
    mutate(bad);
    EXPECT_THROW(e.update_underlying("AAA", bad), input_error);
  }
}

TEST(Device, ParsingAndAvailability) {
  EXPECT_EQ(parse_device("auto"), Device::automatic);
  EXPECT_EQ(parse_device("cpu"), Device::cpu);
  EXPECT_EQ(parse_device("gpu"), Device::gpu);
  EXPECT_THROW(parse_device("tpu"), input_error);
  const auto c = random_case(1, 5);
  if (!gpu_available()) {
    EXPECT_THROW(Engine(c.book, c.methodology, Device::gpu), unavailable_error);
    Engine e(c.book, c.methodology, Device::automatic);
    EXPECT_FALSE(e.on_gpu());
    EXPECT_NE(e.device_name().find("cpu"), std::string::npos);
  } else {
    Engine e(c.book, c.methodology, Device::automatic);
    EXPECT_TRUE(e.on_gpu());
  }
}

// Every kind of vault event, live (issue #10): accounts opened, listings (on a new
// underlying too, which renumbers underlyings), positions opened and closed, trades
// in place, deposits, withdrawals and ticks, through VaultState and LiveEngine, with
// background layouts started, finished and swapped in between. The book is never
// laid out in full on this path, yet every 100 events every account's numbers and
// blocks equal a fresh layout of the same book, bit for bit; the change scan returns
// exactly the accounts whose status moved; scenario rows of held instruments agree.
namespace {
void expect_live_equals_fresh(LiveEngine& live, const Book& book, const Methodology& meth, const Market& market,
                              std::vector<std::uint8_t>& seen, int event) {
  Engine fresh(book, meth, Device::cpu);
  fresh.revalue(market);
  const AccountTable want = fresh.accounts(), got = live.accounts();
  ASSERT_EQ(got.equity, want.equity) << "after event " << event;
  ASSERT_EQ(got.mm, want.mm) << "after event " << event;
  ASSERT_EQ(got.im, want.im) << "after event " << event;
  ASSERT_EQ(got.mm_surplus, want.mm_surplus) << "after event " << event;
  ASSERT_EQ(got.im_surplus, want.im_surplus) << "after event " << event;
  ASSERT_EQ(got.status, want.status) << "after event " << event;
  for (std::int32_t a = 0; a < static_cast<std::int32_t>(book.account_count()); ++a) {
    const BlockResults x = live.account_blocks(a), y = fresh.account_blocks(a);
    ASSERT_EQ(x.account, y.account) << "account " << a << " after event " << event;
    ASSERT_EQ(x.underlying, y.underlying) << "account " << a << " after event " << event;
    ASSERT_EQ(x.mtm, y.mtm) << "account " << a;
    ASSERT_EQ(x.delta, y.delta) << "account " << a;
    ASSERT_EQ(x.scan, y.scan) << "account " << a;
    ASSERT_EQ(x.worst, y.worst) << "account " << a;
    ASSERT_EQ(x.mm, y.mm) << "account " << a;
    ASSERT_EQ(x.im, y.im) << "account " << a;
    ASSERT_EQ(live.account_underlyings(a), fresh.account_underlyings(a)) << "account " << a;
  }
  for (std::size_t p = 0; p < book.position_count(); p += 37)
    ASSERT_EQ(live.scenario_row(book.pos_instrument[p]), fresh.scenario_row(book.pos_instrument[p])) << "position " << p;
  const std::vector<AccountChange> changes = live.take_status_changes();
  std::vector<std::int32_t> moved;
  for (std::size_t a = 0; a < book.account_count(); ++a)
    if (want.status[a] != seen[a]) moved.push_back(static_cast<std::int32_t>(a));
  ASSERT_EQ(changes.size(), moved.size()) << "after event " << event;
  for (std::size_t k = 0; k < changes.size(); ++k) {
    const auto a = static_cast<std::size_t>(moved[k]);
    ASSERT_EQ(changes[k].account, moved[k]);
    EXPECT_EQ(changes[k].reported, seen[a]);
    EXPECT_EQ(changes[k].status, want.status[a]);
    EXPECT_EQ(changes[k].equity, want.equity[a]);
    EXPECT_EQ(changes[k].mm, want.mm[a]);
    seen[a] = want.status[a];
  }
  EXPECT_TRUE(live.take_status_changes().empty());
}
}  // namespace

TEST(LiveEngine, EveryEventKindAppliedLiveEqualsAFreshLayoutBitForBit) {
  auto c = random_case(29, 300);
  feeds::VaultState vault(c.book);
  vault.take_structural_change();
  LiveEngineOptions opt;
  opt.merge_accounts = 1u << 30;  // merges only where the test starts them
  opt.merge_after_s = 1e9;
  LiveEngine live(vault.book(), c.methodology, Device::cpu, c.market, opt);
  std::vector<std::uint8_t> seen(vault.book().account_count(), 0);
  std::mt19937_64 rng(7);
  int opened = 0, listed = 0, new_positions = 0, closed = 0, ticks = 0, merges = 0, compared = 0;
  std::uint64_t tick_seed = 1000;
  bool merging = false;
  std::size_t moved_to = ~std::size_t{0};
  for (int i = 0; i < 2400; ++i) {
    const Book& b = vault.book();
    feeds::VaultEvent e;
    e.id = std::to_string(i);
    const std::uint64_t r = rng() % 40;
    if (r == 0) {  // a tick on one underlying
      const std::string& name = b.underlyings[rng() % b.underlyings.size()];
      c.market.underlyings[name] = books::moved(c.market.underlyings[name], ++tick_seed);
      live.update_underlying(name, c.market.underlyings[name]);
      ++ticks;
      continue;
    }
    if (r == 1) {  // a listing: an option at an expiry the market has, or a perp on a new underlying
      e.type = feeds::EventType::instrument;
      e.id = "instrument:L" + std::to_string(i);
      e.instrument_id = "L" + std::to_string(i);
      if (rng() % 4 == 0) {
        const std::string base = b.underlyings[rng() % b.underlyings.size()];
        e.underlying = "A" + std::to_string(i);  // sorts first: every underlying is renumbered
        c.market.underlyings[e.underlying] = c.market.underlyings[base];
        live.update_underlying(e.underlying, c.market.underlyings[e.underlying]);  // the tick before the listing
        e.kind = "perp";
      } else {
        std::size_t opt_i = rng() % b.instrument_count();
        while (b.kind[opt_i] != InstrumentKind::option) opt_i = (opt_i + 1) % b.instrument_count();
        e.underlying = b.underlyings[static_cast<std::size_t>(b.underlying[opt_i])];
        e.kind = "option";
        e.expiry = b.expiry[opt_i];
        e.strike = b.strike[opt_i] * (0.8 + static_cast<double>(rng() % 400) / 1000.0);
        e.option_type = rng() % 2 ? "C" : "P";
      }
      ++listed;
    } else if (r == 2) {  // a first deposit opens an account
      e.type = feeds::EventType::deposit;
      e.account = 900000 + static_cast<std::uint64_t>(i);
      e.amount = static_cast<double>(rng() % 100000);
      ++opened;
    } else if (r < 8) {
      e.type = r < 6 ? feeds::EventType::deposit : feeds::EventType::withdraw;
      e.account = b.account_id[rng() % b.account_count()];
      e.amount = 0.5 + static_cast<double>(rng() % 100000) / 7.0;
    } else {
      e.type = feeds::EventType::trade;
      // A close moves the book's last position into its place: that one is traded
      // often, and so are the last positions.
      std::size_t p = r < 11 && moved_to < b.position_count() ? moved_to
                      : r < 14 ? b.position_count() - 1 - rng() % std::min<std::size_t>(b.position_count(), 3)
                               : rng() % b.position_count();
      double dq = static_cast<double>(static_cast<std::int64_t>(rng() % 2001) - 1000) / 100.0;
      if (r == 33) {  // close a held position
        p = rng() % b.position_count();
        e.account = b.account_id[static_cast<std::size_t>(b.pos_account[p])];
        e.instrument = b.instrument_id[static_cast<std::size_t>(b.pos_instrument[p])];
        dq = -b.pos_quantity[p];
        moved_to = p;
        ++closed;
      } else if (r >= 34) {  // open a new position (late listings and new accounts favoured), or close a held one
        const std::size_t a = r >= 37 ? b.account_count() - 1 - rng() % std::min<std::size_t>(b.account_count(), 8)
                                      : rng() % b.account_count();
        const std::size_t ins = r == 39 ? b.instrument_count() - 1 - rng() % std::min<std::size_t>(b.instrument_count(), 6)
                                        : rng() % b.instrument_count();
        e.account = b.account_id[a];
        e.instrument = b.instrument_id[ins];
        dq = 1.0 + static_cast<double>(rng() % 5);
        const std::vector<std::size_t> held = vault.positions_of(static_cast<std::int32_t>(a));
        for (const std::size_t q : held)
          if (static_cast<std::size_t>(b.pos_instrument[q]) == ins) dq = -b.pos_quantity[q];
        if (std::any_of(held.begin(), held.end(), [&](std::size_t q) { return static_cast<std::size_t>(b.pos_instrument[q]) == ins; }))
          ++closed;
        else
          ++new_positions;
      } else {
        dq = trade_held(b, p, dq, e);
      }
      e.quantity = dq;
      e.price = 1.0 + static_cast<double>(rng() % 5000) / 16.0;
    }
    vault.apply(e);
    vault.take_structural_change();
    live.apply(vault.book(), vault.take_touched());
    seen.resize(vault.book().account_count(), 0);
    // Background layouts: started, then finished some events later, events applied
    // meanwhile (they stay apart after the swap); one in three runs on this thread.
    if (i % 300 == 120 && !merging) {
      live.merge(vault.book());
      merging = true;
    } else if (merging && i % 300 == 250) {
      EXPECT_TRUE(live.finish_merge(vault.book()).has_value());
      merging = false;
      ++merges;
    } else if (i % 300 == 260) {  // nothing in between: every account clean, the book's tail too
      live.merge(vault.book());
      EXPECT_TRUE(live.finish_merge(vault.book()).has_value());
      EXPECT_EQ(live.stats().dirty_accounts, 0u);
      ++merges;
    }
    if (i % 100 == 99) {
      expect_live_equals_fresh(live, vault.book(), c.methodology, c.market, seen, i);
      ++compared;
      if (HasFailure()) FAIL() << "differs from a fresh layout after event " << i;
    }
  }
  EXPECT_EQ(compared, 24);
  EXPECT_EQ(merges, 16);
  EXPECT_EQ(live.stats().merges, 16u);
  EXPECT_GT(opened, 30);
  EXPECT_GT(listed, 30);
  EXPECT_GT(new_positions, 100);
  EXPECT_GT(closed, 20);
  EXPECT_GT(ticks, 30);
  EXPECT_GT(live.stats().dirty_accounts, 0u);
}

// A new position lays out its account apart, not the book; a merge folds it in.
TEST(LiveEngine, ANewPositionIsLaidOutApartUntilAMergeFoldsItIn) {
  auto c = random_case(31, 200);
  feeds::VaultState vault(c.book);
  LiveEngineOptions opt;
  opt.merge_accounts = 3;  // the third dirty account starts a merge
  opt.background = false;
  LiveEngine live(vault.book(), c.methodology, Device::cpu, c.market, opt);
  const std::int64_t blocks = live.block_count();
  for (int k = 0; k < 3; ++k) {
    feeds::VaultEvent e;
    e.type = feeds::EventType::deposit;
    e.id = "open" + std::to_string(k);
    e.account = 777000 + static_cast<std::uint64_t>(k);
    e.amount = 1000;
    vault.apply(e);
    e.type = feeds::EventType::trade;
    e.id = "trade" + std::to_string(k);
    e.instrument = vault.book().instrument_id[static_cast<std::size_t>(k)];
    e.quantity = 2;
    e.price = 5;
    vault.apply(e);
    live.apply(vault.book(), vault.take_touched());
    EXPECT_EQ(live.stats().main_accounts, c.book.account_count()) << "no full layout after event " << k;
    EXPECT_EQ(live.stats().dirty_accounts, static_cast<std::size_t>(k + 1));
    EXPECT_EQ(live.block_count(), blocks + k + 1);
    const std::optional<std::string> merged = live.poll(vault.book());
    EXPECT_EQ(merged.has_value(), k == 2) << (merged ? *merged : "");
  }
  EXPECT_EQ(live.stats().main_accounts, c.book.account_count() + 3);
  EXPECT_EQ(live.stats().dirty_accounts, 0u);
  EXPECT_EQ(live.stats().merges, 1u);
  std::vector<std::uint8_t> seen(vault.book().account_count(), 0);
  live.set_reported_statuses(seen);
  expect_live_equals_fresh(live, vault.book(), c.methodology, c.market, seen, 0);
}
