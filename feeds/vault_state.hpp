// The vault's book as JetStream vault events change it (SPEC §6).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "feeds/seen_ids.hpp"
#include "kernels/book.hpp"
#include "kernels/live_engine.hpp"

namespace vaultrisk::feeds {

enum class EventType { instrument, deposit, withdraw, trade };

struct VaultEvent {
  EventType type{};
  std::string id;  // unique event id: the body's "id" (listings: "instrument:<id>")
  // instrument
  std::string instrument_id, underlying, kind, option_type;
  double expiry = 0, strike = 0;
  // deposit / withdraw / trade
  std::uint64_t account = 0;
  double amount = 0, quantity = 0, price = 0;
  std::string instrument;
};

// Parses subject vault.event.<type>.<account|underlying> and its JSON body;
// throws input_error with the reason (out_of_range_error outside the numeric
// domain of core/limits.hpp). The event's identity is the body's `id`.
VaultEvent parse_vault_event(std::string_view subject, std::string_view body);

enum class Applied { applied, duplicate };

class VaultState {
 public:
  VaultState() = default;
  explicit VaultState(Book book);

  // Applies one event or throws input_error, changing nothing (out_of_range_error
  // when the outcome would leave the numeric domain: cash, position size). An event id seen
  // before is a no-op (idempotence across redeliveries and republishing).
  Applied apply(const VaultEvent& e);

  // Ids are remembered for the last `kSeenWindow` applied events, oldest first.
  // Redelivery after a restart is caught by the stream sequence anyway (the
  // service acks anything at or below the sequence it recorded), and JetStream
  // drops a republished Nats-Msg-Id within its duplicate window; this window
  // catches a producer that republishes an event much later, without growing
  // for ever.
  static constexpr std::size_t kSeenWindow = 1'000'000;
  void set_seen_window(std::size_t n);

  const Book& book() const { return book_; }
  // True when instruments, accounts or the set of positions changed since the last
  // call (the engine must lay the book out again). Deposits, withdrawals and trades
  // that change an existing position (without closing it) leave it false: they are
  // applied in place (take_touched, Engine::update_positions).
  bool take_structural_change();
  // What changed since the last call: book indices of positions whose quantity or
  // entry changed in place (same account and instrument), accounts whose cash changed
  // (Engine::update_positions), and accounts "reshaped": opened, or whose set of
  // positions or their order in the book changed (a position opened or closed, or
  // renumbered when another was closed). After a reshape a position index may name
  // another position: an index is meaningful only where its account is not reshaped
  // (LiveEngine::apply keeps to that).
  using Touched = BookChanges;
  Touched take_touched();
  // The ids in the window, oldest first, as of now: cheap to take (see SeenIds).
  SeenIds::View seen_ids() const { return seen_.view(); }
  void mark_seen(const std::string& id);

 std::int32_t account_index(std::uint64_t id) const;  // -1 when unknown
  std::int32_t instrument_index(const std::string& id) const;
  // Book indices of an account's positions, ascending (one lookup per instrument).
  std::vector<std::size_t> positions_of(std::int32_t account) const;

 private:
  void apply_trade(const VaultEvent& e);
  static void require_cash(double cash, std::uint64_t account);  // out_of_range_error past kMaxCash
  void remove_position(std::size_t p);

  Book book_;
  std::unordered_map<std::string, std::int32_t> inst_;
  std::unordered_map<std::uint64_t, std::int32_t> acct_;
  std::unordered_map<std::uint64_t, std::size_t> pos_;  // (account << 32 | instrument) -> position
  SeenIds seen_{kSeenWindow};
  bool structural_ = false;
  Touched touched_;
};

}  // namespace vaultrisk::feeds
