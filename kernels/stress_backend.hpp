// The interface of the stress backends (OpenMP always, CUDA with VR_CUDA): the book
// and today's values stay resident, scenarios go through in batches, and only the
// per-scenario totals (and, on request, one batch's PnL matrix) come back.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vaultrisk::detail {

// Accounts per group: the unit of work of a distributed run (stress --workers) and
// the first level of every per-scenario sum, so a group run alone sums to the same
// bits as its share of a whole run. A multiple of every backend's chunk.
inline constexpr std::int64_t kStressGroupAccounts = 4096;

// What the stress kernels read, in the book's file order (instruments, accounts,
// positions grouped by account).
struct StressLayout {
  std::vector<std::int32_t> inst_und;
  std::vector<std::uint8_t> inst_kind, inst_call;
  std::vector<double> inst_strike, inst_t, inst_price, inst_vol, net_qty;
  std::vector<double> und_spot, und_rate;
  std::vector<std::int64_t> acct_pos_begin;
  std::vector<std::int32_t> pos_inst;
  std::vector<double> pos_qty, equity;
  double horizon = 0.0;
};

struct McModel {
  std::vector<double> cholesky;  // U×U lower, row-major
  std::vector<double> sigma, vol_of_vol;
  double rho = 0.0;
  std::uint64_t seed = 0;
};

// Totals of one batch, host side.
struct BatchTotals {
  std::vector<double> vault_und;         // [b][u]
  std::vector<double> bad_debt;          // [b]
  std::vector<std::int64_t> insolvent;   // [b]
  std::vector<double> pnl;               // [account][b], only when asked for
  std::vector<double> spot_mult, dvol;   // [b][u], the batch's scenarios
};

// Per-account state after every batch.
struct TailState {
  std::vector<double> tail;  // [account][m], a heap: sort before use
  std::vector<double> worst_loss;
  std::vector<std::int64_t> worst_index, insolvent;
};

class StressBackend {
 public:
  virtual ~StressBackend() = default;
  virtual std::string name() const = 0;
  // Uploads the layout; allocates batch tables for `batch` scenarios and tails of
  // `tail_m`. `keep_pnl`: the batch's PnL matrix will be downloaded (named scenarios).
  virtual void load(const StressLayout& layout, std::int32_t batch, std::int32_t tail_m, bool keep_pnl) = 0;
  // The next batch's scenarios, from the host ([b][u] rows).
  virtual void set_scenarios(const std::vector<double>& spot_mult, const std::vector<double>& dvol,
                             std::int32_t count) = 0;
  // The next batch's scenarios generated on the backend: Monte Carlo paths
  // [first_path, first_path + count) from cuRAND's Philox stream (SPEC §8).
  // Throws unavailable_error in a build without cuRAND.
  virtual void monte_carlo(const McModel& model, std::int64_t first_path, std::int32_t count) = 0;
  // Revalues every account under the batch; `first` is its first scenario's global
  // index, `inserted` how many scenarios the tails already hold.
  virtual void run(std::int64_t first, std::int64_t inserted) = 0;
  virtual void download(BatchTotals& out, bool with_pnl) = 0;
  virtual void download(TailState& out) = 0;
};

std::unique_ptr<StressBackend> make_omp_stress_backend();
std::unique_ptr<StressBackend> make_cuda_stress_backend();  // unavailable_error without CUDA

// cuRAND's Philox4_32_10 normals (curandGenerateNormalDouble, mean 0, sd 1), values
// [offset, offset + n) of the stream of `seed`: the host generator, as the CPU
// backend uses it. Throws unavailable_error in a build without cuRAND.
std::vector<double> curand_host_normals(std::uint64_t seed, std::uint64_t offset, std::size_t n);
bool curand_available();

}  // namespace vaultrisk::detail
