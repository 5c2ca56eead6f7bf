// The interface every compute backend implements; the Engine drives it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "kernels/layout.hpp"

namespace vaultrisk::detail {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // Uploads the book layout and allocates every table; the state stays resident.
  virtual void load(const Layout& layout) = 0;
  // Uploads the (small) market parameters.
  virtual void set_market(const MarketParams& market) = 0;

  // First instrument in [begin, end) that cannot be valued, or `end`.
  virtual std::int64_t first_invalid(std::int64_t begin, std::int64_t end) = 0;
  virtual void price(std::int64_t begin, std::int64_t end) = 0;
  // Blocks / accounts of one underlying, or all of them when underlying < 0.
  virtual void aggregate_blocks(std::int32_t underlying) = 0;
  virtual void aggregate_accounts(std::int32_t underlying) = 0;
  // Replaces every account's cash (file order; as many as the layout has).
  virtual void set_cash(const std::vector<double>& cash) = 0;
  // In place: new quantities and entries at position slots, new cash for accounts
  // (one copy each), then the listed blocks and the listed accounts re-aggregated.
  virtual void patch(const std::vector<PositionPatch>& positions, const std::vector<CashPatch>& cash,
                     const std::vector<std::int32_t>& blocks, const std::vector<std::int32_t>& accounts) = 0;
  virtual void synchronize() = 0;

  virtual void download(InstrumentTable& out) = 0;
  virtual void download(BlockTable& out) = 0;
  // Blocks [begin, end) only.
  virtual void download_blocks(std::int64_t begin, std::int64_t end, BlockTable& out) = 0;
  virtual void download(AccountTable& out) = 0;
  virtual void download_status(std::vector<std::uint8_t>& out) = 0;
  // The statuses the caller has seen, one per account (uploaded once per layout).
  virtual void set_reported(const std::vector<std::uint8_t>& status) = 0;
  // The accounts whose status differs from the reported one, compacted where the
  // backend runs (copy_if over the accounts), packed with their numbers and copied
  // off in one piece; their reported status becomes the current one.
  virtual void take_status_changes(std::vector<AccountChange>& out) = 0;
  // The same over the given accounts only (ascending, distinct): after trades in
  // place, only the traded accounts can have moved.
  virtual void take_status_changes_among(const std::vector<std::int32_t>& accounts, std::vector<AccountChange>& out) = 0;
  // The packed numbers of the given accounts: one copy each way.
  virtual void gather_accounts(const std::vector<std::int32_t>& accounts, std::vector<AccountChange>& out) = 0;
  // Scenario rows (V_j - V) of instruments [begin, end), row-major with stride.
  virtual void download_scenarios(std::int64_t begin, std::int64_t end, std::vector<double>& out) = 0;
};

std::unique_ptr<Backend> make_omp_backend();
// Throws unavailable_error in a build without CUDA.
std::unique_ptr<Backend> make_cuda_backend();
// Number of usable CUDA devices; 0 in a build without CUDA or on a host without a GPU.
int cuda_device_count();
bool cuda_compiled();

}  // namespace vaultrisk::detail
