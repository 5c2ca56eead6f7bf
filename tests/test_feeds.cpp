// Oracle tick validation and vault event semantics.
#include <gtest/gtest.h>

#include "chain/keccak.hpp"
#include "chain/secp256k1.hpp"
#include "core/error.hpp"
#include "core/limits.hpp"
#include "feeds/oracle_tick.hpp"
#include "feeds/vault_state.hpp"

using namespace vaultrisk;
using namespace vaultrisk::feeds;

namespace {

const std::string kOracleKey = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
const std::string kOtherKey = "0x0000000000000000000000000000000000000000000000000000000000000001";
constexpr std::int64_t kNow = 1767225600000;

std::string body(std::uint64_t seq, std::int64_t time_ms, const std::string& spot = "97000.5",
                 const std::string& und = "BTC") {
  return "{\"underlying\":\"" + und + "\",\"seq\":" + std::to_string(seq) + ",\"time_ms\":" + std::to_string(time_ms) +
         ",\"spot\":" + spot + ",\"rate\":0.01,\"confidence\":0.9,\"expiries\":[{\"expiry\":1769817600,\"svi\":"
         "{\"a\":0.02,\"b\":0.1,\"rho\":-0.3,\"m\":0.0,\"sigma\":0.2}}]}";
}

TickValidator validator() {
  TickValidatorConfig c;
  c.signers.insert(chain::Signer(kOracleKey).address());
  c.max_age_ms = 5000;
  c.max_future_ms = 1000;
  return TickValidator(c);
}

std::string reason(const std::variant<OracleTick, TickRejection>& r) {
  return std::holds_alternative<TickRejection>(r) ? std::get<TickRejection>(r).reason : "accepted";
}

}  // namespace

TEST(OracleTick, AValidSignedTickIsDecodedExactly) {
  const TickValidator v = validator();
  const std::string b = body(7, kNow - 100);
  const auto r = v.check("oracle.tick.BTC", b, sign_tick_body(kOracleKey, b), kNow);
  ASSERT_EQ(reason(r), "accepted");
  const OracleTick& t = std::get<OracleTick>(r);
  EXPECT_EQ(t.underlying, "BTC");
  EXPECT_EQ(t.seq, 7u);
  EXPECT_EQ(t.market.spot, 97000.5);
  EXPECT_EQ(t.market.rate, 0.01);
  EXPECT_EQ(t.market.confidence, 0.9);
  EXPECT_EQ(t.market.time, (kNow - 100) / 1000.0);
  ASSERT_EQ(t.market.expiries.size(), 1u);
  EXPECT_EQ(t.body, b);
  EXPECT_EQ(t.body_hash, chain::keccak256(b));
  EXPECT_EQ(t.signer, chain::Signer(kOracleKey).address());
}

TEST(OracleTick, EveryRejectionHasItsReason) {
  TickValidator v = validator();
  const std::string b = body(7, kNow);
  const std::string sig = sign_tick_body(kOracleKey, b);
  EXPECT_EQ(reason(v.check("oracle.tick.BTC", b, std::nullopt, kNow)), "missing_signature");
  EXPECT_EQ(reason(v.check("oracle.tick.BTC", b, "0xdeadbeef", kNow)), "bad_signature");
  // A valid signature over other bytes recovers another address: not a configured oracle.
  EXPECT_EQ(reason(v.check("oracle.tick.BTC", body(7, kNow, "97000.6"), sig, kNow)), "unknown_signer");
  EXPECT_EQ(reason(v.check("oracle.tick.BTC", b, sign_tick_body(kOtherKey, b), kNow)), "unknown_signer");
  EXPECT_EQ(reason(v.check("oracle.tick.ETH", b, sig, kNow)), "subject_mismatch");
  EXPECT_EQ(reason(v.check("oracle.BTC", b, sig, kNow)), "bad_subject");
  EXPECT_EQ(reason(v.check("oracle.tick.BTC", b, sig, kNow + 6000)), "stale");
  EXPECT_EQ(reason(v.check("oracle.tick.BTC", b, sig, kNow - 2000)), "future");
  const std::string nan_body = body(8, kNow, "1e999");
  EXPECT_EQ(reason(v.check("oracle.tick.BTC", nan_body, sign_tick_body(kOracleKey, nan_body), kNow)), "malformed");
  // Outside the numeric domain (core/limits.hpp): a negative spot, a spot past 1e9.
  for (const char* spot : {"-5", "0", "1.5e9"}) {
    const std::string out = body(8, kNow, spot);
    EXPECT_EQ(reason(v.check("oracle.tick.BTC", out, sign_tick_body(kOracleKey, out), kNow)), "out_of_range") << spot;
  }
  const std::string huge(limits::kMaxTickBytes + 1, ' ');
  EXPECT_EQ(reason(v.check("oracle.tick.BTC", huge, sign_tick_body(kOracleKey, huge), kNow)), "too_large");
  const std::string junk = "{\"underlying\":\"BTC\"";
  EXPECT_EQ(reason(v.check("oracle.tick.BTC", junk, sign_tick_body(kOracleKey, junk), kNow)), "malformed");
  // Replays: the same seq, or an older one, once a tick was accepted.
  ASSERT_EQ(reason(v.check("oracle.tick.BTC", b, sig, kNow)), "accepted");
  v.accept(std::get<OracleTick>(v.check("oracle.tick.BTC", b, sig, kNow)));
  EXPECT_EQ(reason(v.check("oracle.tick.BTC", b, sig, kNow)), "replayed");
  const std::string older = body(6, kNow);
  EXPECT_EQ(reason(v.check("oracle.tick.BTC", older, sign_tick_body(kOracleKey, older), kNow)), "replayed");
  const std::string next = body(8, kNow);
  EXPECT_EQ(reason(v.check("oracle.tick.BTC", next, sign_tick_body(kOracleKey, next), kNow)), "accepted");
}

namespace {
VaultEvent ev(const std::string& subject, const std::string& json) { return parse_vault_event(subject, json); }
}  // namespace

TEST(VaultEvents, ListingDepositTradeWithdraw) {
  VaultState s;
  s.apply(ev("vault.event.instrument.BTC", R"({"id":"BTC-PERP","kind":"perp","underlying":"BTC"})"));
  s.apply(ev("vault.event.instrument.BTC",
             R"({"id":"BTC-C","kind":"option","underlying":"BTC","expiry":1769817600,"strike":100000,"type":"C"})"));
  s.apply(ev("vault.event.instrument.ETH", R"({"id":"ETH-PERP","kind":"perp","underlying":"ETH"})"));
  EXPECT_EQ(s.book().underlyings, (std::vector<std::string>{"BTC", "ETH"}));
  EXPECT_EQ(s.book().underlying[2], 1);
  s.apply(ev("vault.event.deposit.7", R"({"id":"d1","account":7,"amount":1000})"));
  EXPECT_EQ(s.book().cash[0], 1000);
  // Options: premium leaves cash.
  s.apply(ev("vault.event.trade.7", R"({"id":"t1","account":7,"instrument":"BTC-C","quantity":2,"price":150})"));
  EXPECT_EQ(s.book().cash[0], 700);
  s.apply(ev("vault.event.withdraw.7", R"({"id":"w1","account":7,"amount":50})"));
  EXPECT_EQ(s.book().cash[0], 650);
  // Accounts beyond 2^53 as decimal strings.
  s.apply(ev("vault.event.deposit.18446744073709551615", R"({"id":"d2","account":"18446744073709551615","amount":5})"));
  EXPECT_EQ(s.book().account_id[1], 18446744073709551615ull);
}

TEST(VaultEvents, PerpEntryIsQuantityWeightedAndReductionsRealise) {
  VaultState s;
  s.apply(ev("vault.event.instrument.BTC", R"({"id":"P","kind":"perp","underlying":"BTC"})"));
  s.apply(ev("vault.event.deposit.1", R"({"id":"dep","account":1,"amount":0.5})"));
  auto trade = [&](const char* id, double q, double px) {
    s.apply(ev("vault.event.trade.1", std::string("{\"id\":\"") + id + "\",\"account\":1,\"instrument\":\"P\",\"quantity\":" +
                                          std::to_string(q) + ",\"price\":" + std::to_string(px) + "}"));
  };
  trade("a", 1, 100);
  trade("b", 3, 120);  // entry (1*100 + 3*120)/4 = 115
  EXPECT_EQ(s.book().pos_quantity[0], 4);
  EXPECT_EQ(s.book().pos_entry[0], 115);
  EXPECT_EQ(s.book().cash[0], 0.5);  // perps move no premium
  trade("c", -1, 125);  // close 1 long at 125: +10, entry unchanged
  EXPECT_EQ(s.book().cash[0], 10.5);
  EXPECT_EQ(s.book().pos_entry[0], 115);
  trade("d", -5, 110);  // close 3 at 110: -15; flip to short 2 at 110
  EXPECT_EQ(s.book().cash[0], -4.5);
  EXPECT_EQ(s.book().pos_quantity[0], -2);
  EXPECT_EQ(s.book().pos_entry[0], 110);
  trade("e", 2, 100);  // close the short at 100: +20, position gone
  EXPECT_EQ(s.book().cash[0], 15.5);
  EXPECT_EQ(s.book().position_count(), 0u);
  EXPECT_TRUE(s.take_structural_change());
  EXPECT_FALSE(s.take_structural_change());
}

TEST(VaultEvents, DuplicatesAreNoOpsAndBadEventsChangeNothing) {
  VaultState s;
  s.apply(ev("vault.event.instrument.BTC", R"({"id":"P","kind":"perp","underlying":"BTC"})"));
  s.apply(ev("vault.event.deposit.1", R"({"id":"d","account":1,"amount":10})"));
  // The body id is the event's identity (the transport header is not even read).
  EXPECT_EQ(s.apply(ev("vault.event.deposit.1", R"({"id":"d","account":1,"amount":10})")), Applied::duplicate);
  EXPECT_EQ(s.book().cash[0], 10);
  const Book before = s.book();
  EXPECT_THROW(s.apply(ev("vault.event.trade.2", R"({"id":"t","account":2,"instrument":"P","quantity":1,"price":5})")), input_error);
  EXPECT_THROW(s.apply(ev("vault.event.trade.1", R"({"id":"t","account":1,"instrument":"Q","quantity":1,"price":5})")), input_error);
  EXPECT_THROW(s.apply(ev("vault.event.trade.1", R"({"id":"t","account":1,"instrument":"P","quantity":1,"price":0})")), input_error);
  EXPECT_THROW(s.apply(ev("vault.event.withdraw.9", R"({"id":"w","account":9,"amount":1})")), input_error);
  // The same listing again is a no-op; listing the id again with other terms is an error.
  EXPECT_EQ(s.apply(ev("vault.event.instrument.BTC", R"({"id":"P","kind":"perp","underlying":"BTC"})")), Applied::duplicate);
  EXPECT_THROW(s.apply(ev("vault.event.instrument.BTC", R"({"id":"P","kind":"option","underlying":"BTC","expiry":1,"strike":1,"type":"C"})")), input_error);
  EXPECT_EQ(s.book().cash, before.cash);
  EXPECT_EQ(s.book().position_count(), before.position_count());
  // Parse-level rejections name the field.
  const struct { const char* subject; const char* body; const char* expect; } bad[] = {
      {"vault.event.deposit.1", R"({"id":"x","account":2,"amount":1})", "subject: account 1 but body account is 2"},
      {"vault.event.deposit.1", R"({"id":"x","account":1,"amount":-1})", "event.amount"},
      {"vault.event.deposit.1", R"({"id":"x","account":1,"amount":1,"memo":"hi"})", "event.memo: unknown field"},
      {"vault.event.trade.1", R"({"id":"x","account":1,"instrument":"P","quantity":0,"price":1})", "event.quantity"},
      {"vault.event.bonus.1", R"({"id":"x"})", "unknown event type 'bonus'"},
      {"vault.event.instrument.ETH", R"({"id":"E","kind":"perp","underlying":"BTC"})", "listing for 'ETH'"},
      {"vault.event.instrument.BTC", R"({"id":"O","kind":"option","underlying":"BTC","expiry":1,"strike":-1,"type":"C"})", "event.strike"},
      {"vault.event.deposit.1", R"({"account":1,"amount":1})", "event.id: missing"},
      {"vault.event.deposit.1", R"({"id":"a b","account":1,"amount":1})", "event.id: must be 1..128 printable ASCII"},
      {"vault.event.deposit.1", R"({"id":"x","account":1,"amount":1)", "invalid JSON"},
  };
  for (const auto& c : bad) {
    try {
      parse_vault_event(c.subject, c.body);
      ADD_FAILURE() << c.body;
    } catch (const input_error& e) {
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what();
    }
  }
}

TEST(VaultEvents, SeenIdsAreAWindowOfTheNewest) {
  VaultState s;
  s.set_seen_window(3);
  s.apply(ev("vault.event.deposit.1", R"({"id":"a","account":1,"amount":1})"));
  for (const char* id : {"b", "c", "d"})
    s.apply(ev("vault.event.deposit.1", std::string(R"({"id":")") + id + R"(","account":1,"amount":1})"));
  EXPECT_EQ(s.seen_ids().to_vector(), (std::vector<std::string>{"b", "c", "d"}));
  EXPECT_EQ(s.apply(ev("vault.event.deposit.1", R"({"id":"d","account":1,"amount":1})")), Applied::duplicate);
  EXPECT_EQ(s.book().cash[0], 4);
  // Restored in order (as from a snapshot), the window keeps the newest.
  VaultState r;
  r.set_seen_window(2);
  s.seen_ids().for_each([&](const std::string& id) { r.mark_seen(id); });
  EXPECT_EQ(r.seen_ids().to_vector(), (std::vector<std::string>{"c", "d"}));
}

// A snapshot takes the window on the engine thread: it must share the sealed chunks,
// not copy a million ids, and stay exactly what it was while the window moves on.
TEST(VaultEvents, ASnapshotOfTheSeenIdsSharesTheirChunksAndKeepsItsIds) {
  constexpr std::size_t kWindow = 3 * feeds::SeenIds::kChunk + 100;
  feeds::SeenIds seen(kWindow);
  const auto id = [](std::size_t i) { return "event-" + std::to_string(i); };
  for (std::size_t i = 0; i < 5 * feeds::SeenIds::kChunk + 7; ++i) ASSERT_TRUE(seen.insert(id(i)));
  ASSERT_EQ(seen.size(), kWindow);
  const feeds::SeenIds::View v = seen.view();
  // At most one chunk of ids is copied; the rest are the window's own chunks.
  EXPECT_LE(v.open.size(), feeds::SeenIds::kChunk);
  ASSERT_FALSE(v.sealed.empty());
  for (const auto& c : v.sealed) EXPECT_GE(c.use_count(), 2);
  // The window moves on: every id of the view is dropped from it ...
  for (std::size_t i = 0; i < 2 * kWindow; ++i) seen.insert(id(1'000'000 + i));
  EXPECT_FALSE(seen.contains(id(5 * feeds::SeenIds::kChunk + 6)));
  EXPECT_TRUE(seen.contains(id(1'000'000 + 2 * kWindow - 1)));
  EXPECT_FALSE(seen.insert(id(1'000'000 + 2 * kWindow - 1)));
  // ... and the view still holds the newest kWindow ids as they were, oldest first.
  std::vector<std::string> want;
  for (std::size_t i = 5 * feeds::SeenIds::kChunk + 7 - kWindow; i < 5 * feeds::SeenIds::kChunk + 7; ++i) want.push_back(id(i));
  EXPECT_EQ(v.to_vector(), want);
  EXPECT_EQ(seen.view().to_vector().size(), kWindow);
  EXPECT_EQ(seen.view().to_vector().front(), id(1'000'000 + kWindow));
}

// The numeric domain at the door (core/limits.hpp): outside it, out_of_range_error,
// and the state is unchanged. Each case once reached the live service.
TEST(VaultEvents, OutOfRangeEventsAreRefusedAndChangeNothing) {
  VaultState s;
  s.apply(ev("vault.event.instrument.BTC", R"({"id":"P","kind":"perp","underlying":"BTC"})"));
  s.apply(ev("vault.event.instrument.BTC",
             R"({"id":"C","kind":"option","underlying":"BTC","expiry":1769817600,"strike":100,"type":"C"})"));
  s.apply(ev("vault.event.deposit.1", R"({"id":"d","account":1,"amount":1000})"));
  const Book before = s.book();
  const char* parse_bad[] = {
      R"({"id":"a","account":1,"amount":1e59})",  // stalled epochs (did not fit an int256 leaf)
      R"({"id":"b","account":1,"amount":1e308})",
  };
  for (const char* b : parse_bad) EXPECT_THROW(ev("vault.event.deposit.1", b), out_of_range_error) << b;
  const char* trade_bad[] = {
      R"({"id":"t1","account":1,"instrument":"C","quantity":-1e300,"price":0})",  // stopped the loop
      R"({"id":"t2","account":1,"instrument":"P","quantity":1.7e308,"price":100})",
      R"({"id":"t3","account":1,"instrument":"C","quantity":1e200,"price":1e200})",
      R"({"id":"t4","account":1,"instrument":"P","quantity":1,"price":2e9})",
  };
  for (const char* b : trade_bad) EXPECT_THROW(ev("vault.event.trade.1", b), out_of_range_error) << b;
  // Within each event's range, but the outcome is not: a perp price below the minimum,
  // a position past 1e12, cash past 1e18.
  EXPECT_THROW(s.apply(ev("vault.event.trade.1", R"({"id":"t5","account":1,"instrument":"P","quantity":1,"price":0})")),
               out_of_range_error);
  for (int k = 0; k < 1000; ++k)
    s.apply(ev("vault.event.trade.1", R"({"id":"q)" + std::to_string(k) + R"(","account":1,"instrument":"P","quantity":1e9,"price":1})"));
  EXPECT_THROW(s.apply(ev("vault.event.trade.1", R"({"id":"q-over","account":1,"instrument":"P","quantity":1e9,"price":1})")),
               out_of_range_error);
  EXPECT_EQ(s.book().pos_quantity[0], 1e12);
  VaultState r;
  r.apply(ev("vault.event.deposit.1", R"({"id":"d0","account":1,"amount":1e15})"));
  for (int k = 1; k < 1000; ++k)
    r.apply(ev("vault.event.deposit.1", R"({"id":"d)" + std::to_string(k) + R"(","account":1,"amount":1e15})"));
  EXPECT_THROW(r.apply(ev("vault.event.deposit.1", R"({"id":"d-over","account":1,"amount":1e15})")), out_of_range_error);
  EXPECT_EQ(r.book().cash[0], 1e18);
  EXPECT_EQ(before.cash, std::vector<double>{1000});
}
