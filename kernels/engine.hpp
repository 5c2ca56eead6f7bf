// The risk engine: a book resident on a backend (CPU or GPU), revalued against
// markets in full or one underlying at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/book.hpp"
#include "kernels/layout.hpp"
#include "kernels/market.hpp"
#include "kernels/methodology.hpp"

namespace vaultrisk {

enum class Device { automatic, cpu, gpu };

// "auto" | "cpu" | "gpu"; throws input_error otherwise.
Device parse_device(std::string_view text);
// True when this build has CUDA and a CUDA device is present.
bool gpu_available();

// Per (account, underlying) results, ordered by account (file order) then underlying name.
struct BlockResults : BlockTable {
  std::vector<std::int32_t> account;     // account index (file order)
  std::vector<std::int32_t> underlying;  // index into Book::underlyings
};

// Host-side check that `market` can value every option of `underlying` in `book`
// (a slice for each unexpired expiry, w > 0 at each strike). Throws input_error
// naming the instrument; for when no engine is at hand to check it on the device.
void validate_market_for_book(const Book& book, const std::string& underlying, const UnderlyingMarket& market);
// The same check for one option (e.g. a new listing) of `underlying`.
void validate_market_for_option(const std::string& id, double expiry, double strike, const std::string& underlying,
                                const UnderlyingMarket& market);

namespace detail {
class Backend;
}

class Engine {
 public:
  // Lays the book out and uploads it; `automatic` picks the GPU when one is usable.
  Engine(const Book& book, const Methodology& methodology, Device device = Device::automatic);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  std::string device_name() const;
  bool on_gpu() const { return on_gpu_; }

  // Full revaluation. Every underlying of the book must be in `market`.
  // On bad input throws input_error and leaves the previous state untouched.
  void revalue(const Market& market);
  // The same with each option's mark vol fixed (file order, one per instrument;
  // perps ignored) instead of read off the smile: the shocked markets of SPEC §8's
  // named scenarios. No SVI slice is needed then.
  void revalue(const Market& market, const std::vector<double>& vol_by_instrument);

  // Incremental revaluation after one underlying's market changed: reprices only its
  // instruments and its (account, underlying) blocks, then the accounts holding it.
  // Requires an earlier revalue(). Returns false when no instrument uses `underlying`.
  bool update_underlying(const std::string& underlying, const UnderlyingMarket& market);

  // After deposits and withdrawals: new cash for every account (file order, same
  // accounts as the book the engine was built from). Recomputes the accounts only;
  // positions and prices are untouched. Equal, bit for bit, to a full revaluation
  // of the book with that cash. Requires an earlier revalue().
  void update_cash(const std::vector<double>& cash);

  // Trades and cash changes applied in place. `book` is the book the engine was laid
  // out from, changed since only in quantities, entries and cash (same accounts, same
  // positions at the same indices); `positions` are the book indices whose quantity or
  // entry changed, `accounts` those whose cash changed. Only those positions' blocks
  // and their accounts are recomputed: equal, bit for bit, to a full revaluation of
  // a fresh layout of `book`. A new position, account or listing still needs a new
  // Engine. Requires an earlier revalue().
  void update_positions(const Book& book, std::vector<std::int64_t> positions, std::vector<std::int32_t> accounts);
  // The same, given the changes themselves rather than a book: each position by its
  // index in the book the engine was laid out from (with its account, as a check),
  // and every account to recompute with its cash now. An account of a changed
  // position must be among `accounts`. For callers whose book has grown since the
  // layout (LiveEngine): existing positions keep their indices.
  struct PositionUpdate {
    std::int64_t position;
    std::int32_t account;
    double quantity, entry;
  };
  void update_in_place(const std::vector<PositionUpdate>& positions, std::vector<CashPatch> accounts);

  // Results; instruments and accounts in file order.
  InstrumentTable instruments() const;
  BlockResults blocks() const;
  // One account's blocks (its underlyings, ascending), without the rest of the book.
  BlockResults account_blocks(std::int32_t account) const;
  AccountTable accounts() const;
  // Just the statuses (one byte per account), and one account's numbers: what a
  // per-tick change scan needs, without moving every column off the device.
  std::vector<std::uint8_t> statuses() const;
  struct AccountRow {
    double equity, mm, im, mm_surplus, im_surplus;
  };
  AccountRow account(std::int32_t account) const;

  // The per-tick change scan, done where the engine runs. The engine keeps, per
  // account, the status its caller last saw: every account starts healthy, or as
  // set_reported_statuses says (file order, one byte per account).
  void set_reported_statuses(const std::vector<std::uint8_t>& status);
  // The accounts whose status differs from the one last seen, in account order,
  // with their numbers; from then on their current status counts as seen. On the
  // GPU: a copy_if over the accounts, a pack, and one copy off the device. When only
  // update_positions() ran since the last take, only the accounts it recomputed
  // are looked at (no other status can have moved).
  std::vector<AccountChange> take_status_changes();
  // The numbers (and statuses) of the given accounts, in one copy each way.
  std::vector<AccountChange> accounts(const std::vector<std::int32_t>& accounts) const;

  const std::vector<std::string>& underlyings() const { return underlying_names_; }
  // Underlying indices an account holds positions in, ascending.
  std::vector<std::int32_t> account_underlyings(std::int32_t account) const;
  // One instrument's (file order) scenario row, V_j - V per unit, as long as its grid.
  std::vector<double> scenario_row(std::int32_t instrument) const;
  std::int64_t block_count() const { return layout_.n_blocks(); }
  // Blocks until the backend has finished (timing).
  void synchronize();

 private:
  MarketParams build_params(const std::vector<UnderlyingMarket>& und) const;
  void apply(std::vector<UnderlyingMarket> next, std::int32_t only_underlying);
  std::vector<UnderlyingMarket> market_for_book(const Market& market) const;
  std::string explain_invalid(std::int64_t internal_instrument,
                              const std::vector<UnderlyingMarket>& und) const;

  std::unique_ptr<detail::Backend> backend_;
  bool on_gpu_ = false;
  Layout layout_;  // positions released after upload
  std::vector<std::int32_t> inst_file_index_;  // internal -> file order
  std::vector<std::int32_t> inst_internal_;    // file order -> internal
  std::vector<std::string> instrument_ids_;    // file order
  std::vector<std::string> underlying_names_;
  std::vector<UnderlyingMarket> current_;      // per underlying; empty before revalue()
  // What the next take_status_changes() must look at: every account, or (after
  // update_positions() alone) just the accounts it recomputed.
  bool scan_all_ = true;
  std::vector<std::int32_t> scan_only_;
  std::vector<double> vol_override_;           // internal order; empty: SVI vols
};

}  // namespace vaultrisk
