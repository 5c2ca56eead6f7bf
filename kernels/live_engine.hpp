// The engine as the live service keeps it: a book that gains accounts, positions and
// listings as vault events arrive, valued without laying the whole book out again on
// the tick path (issue #10).
//
// Two engines. `main` is a full layout of the book as it stood at some moment V.
// `overlay` is a small layout of just the "dirty" accounts: those opened since V, and
// those whose positions were opened, closed or renumbered since. A dirty account is
// read from the overlay, never from main. An account's numbers depend only on its own
// positions (in book order) and the market, so both engines give each account the
// numbers a fresh layout of the whole book would: bit for bit.
//
// When the overlay grows (LiveEngineOptions), a full layout of the book as it is then
// is built on a background thread while both engines keep serving. poll() swaps it in
// on the caller's thread, catches it up with the ticks since, and the accounts changed
// meanwhile make up the new overlay.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernels/engine.hpp"

namespace vaultrisk {

// What vault events changed in a book since the last look (feeds::VaultState::Touched).
struct BookChanges {
  std::vector<std::int64_t> positions;  // quantity or entry changed in place
  std::vector<std::int32_t> accounts;   // cash changed
  std::vector<std::int32_t> reshaped;   // opened, or positions opened, closed or renumbered
};

struct LiveEngineOptions {
  // A background layout starts when this many accounts are dirty...
  std::size_t merge_accounts = 4096;
  // ... or when the oldest dirty account has been so for this long.
  double merge_after_s = 30.0;
  // false: a merge runs on the caller's thread, inside poll() (tests, tools).
  bool background = true;
  // Called first on the background thread (the service lowers its priority there,
  // and its OpenMP team inherits it, so the engine thread wins every core).
  std::function<void()> on_background_thread;
};

class LiveEngine {
 public:
  // Lays `book` out in full and values it at `market` (every underlying of the book).
  // Throws input_error when the market cannot value the book.
  LiveEngine(const Book& book, const Methodology& methodology, Device device, const Market& market,
             LiveEngineOptions options = {});
  ~LiveEngine();  // waits for a merge in flight
  LiveEngine(const LiveEngine&) = delete;
  LiveEngine& operator=(const LiveEngine&) = delete;

  // Vault events applied to `book` since the last call (the same book, grown and
  // changed by them). In-place changes of clean accounts patch main; a dirty
  // account's change lays out the overlay again (its accounts only). Throws
  // input_error when the market cannot value a dirty account's instrument: the
  // LiveEngine is then unusable and must be built again.
  void apply(const Book& book, const BookChanges& changes);
  // One underlying's market changed. Returns false when no held instrument uses it
  // (the market is still kept for positions to come). On a market that cannot value
  // a held option: input_error, and nothing changes.
  bool update_underlying(const std::string& underlying, const UnderlyingMarket& market);

  // As Engine's: one status per account of the book, and the accounts whose status
  // differs from the one last seen, in account order, with their numbers.
  void set_reported_statuses(const std::vector<std::uint8_t>& status);
  std::vector<AccountChange> take_status_changes();
  std::vector<AccountChange> accounts(const std::vector<std::int32_t>& ids) const;
  AccountTable accounts() const;  // every account of the book, file order
  // Underlying indices are the book's (the last apply()'s).
  BlockResults account_blocks(std::int32_t account) const;
  std::vector<std::int32_t> account_underlyings(std::int32_t account) const;
  // A held instrument's scenario row (Engine::scenario_row); out_of_range otherwise.
  std::vector<double> scenario_row(std::int32_t instrument) const;
  std::string device_name() const { return main_->device_name(); }
  std::int64_t block_count() const;

  // Swaps in a finished background layout, and starts one when one is due. Returns
  // what happened, for the log (nothing: empty). Never throws for a failed merge:
  // the two engines it would have replaced keep serving, and it is tried again later.
  std::optional<std::string> poll(const Book& book);
  // Starts a merge now (none in flight); with `background` false it is done on return.
  void merge(const Book& book);
  // Waits for a merge in flight and swaps it in (tests).
  std::optional<std::string> finish_merge(const Book& book);

  struct Stats {
    std::size_t dirty_accounts = 0, overlay_positions = 0, main_accounts = 0;
    bool merging = false;
    std::uint64_t merges = 0;
  };
  Stats stats() const;

 private:
  struct Overlay;
  struct MergeJob;
  std::unique_ptr<Overlay> build_overlay(const Book& book, const std::vector<std::int32_t>& dirty) const;
  void mark_dirty(std::int32_t account);
  void swap_in(const Book& book);
  std::int32_t und_index(const std::string& name) const;  // in the book's numbering

  Methodology methodology_;
  Device device_;
  LiveEngineOptions options_;
  std::unique_ptr<Engine> main_;
  std::size_t main_accounts_ = 0, main_instruments_ = 0;
  std::unique_ptr<Overlay> overlay_;
  std::vector<std::uint8_t> dirty_;            // per account of the book
  std::vector<std::int32_t> dirty_list_;       // ascending
  std::chrono::steady_clock::time_point dirty_since_{};
  std::vector<std::uint8_t> reported_;         // per account: the status last taken or set
  std::vector<std::string> underlyings_;       // the book's, as of the last apply()
  std::map<std::string, UnderlyingMarket> market_;
  // A merge in flight, and what changed since its snapshot of the book.
  std::unique_ptr<MergeJob> job_;
  std::vector<std::uint8_t> since_;           // per account: touched since the snapshot
  std::vector<std::int32_t> since_list_;
  std::vector<std::string> ticked_since_;
  std::chrono::steady_clock::time_point retry_after_{};
  std::uint64_t merges_ = 0;
};

}  // namespace vaultrisk
