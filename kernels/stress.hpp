// Batch stress, VaR and ES (SPEC §8): every account fully revalued under named,
// historical or Monte Carlo scenarios, in batches, so memory stays bounded at any
// number of scenarios. Scenario values are per underlying of the book, in the
// book's (bytewise) underlying order.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/book.hpp"
#include "kernels/engine.hpp"
#include "kernels/market.hpp"
#include "kernels/methodology.hpp"

namespace vaultrisk {

enum class StressSource { named, history, monte_carlo };

// Explicit scenarios (named, or historical): row i, column u.
struct ScenarioTable {
  std::vector<std::string> names;
  std::vector<double> spot_mult, dvol;  // [scenario][underlying]
  std::int64_t size() const { return static_cast<std::int64_t>(names.size()); }
};

// SPEC §8's Monte Carlo model over the book's underlyings.
struct MonteCarloSpec {
  std::int64_t paths = 0;
  std::uint64_t seed = 0;
  std::vector<double> sigma;        // per underlying
  std::vector<double> vol_of_vol;   // per underlying
  std::vector<double> correlation;  // U×U, row-major, unit diagonal
  double spot_vol_correlation = 0.0;
};

struct StressSpec {
  StressSource source = StressSource::named;
  double horizon_days = 0.0;
  double confidence = 0.99;
  ScenarioTable table;  // named and history
  MonteCarloSpec monte_carlo;
  std::int64_t scenario_count() const { return source == StressSource::monte_carlo ? monte_carlo.paths : table.size(); }
};

struct StressResult {
  std::vector<std::string> underlyings;
  std::int64_t account_begin = 0;  // the first account (file order) of the per-account columns
  std::int64_t scenarios = 0;
  std::int32_t tail = 0;  // m: scenarios in each tail
  // Per scenario.
  std::vector<double> vault_pnl, bad_debt;
  std::vector<std::int64_t> insolvent;
  std::vector<std::int64_t> liquidatable;  // named only
  std::vector<double> vault_und;           // [scenario][underlying]
  std::vector<double> spot_mult, dvol;     // [scenario][underlying], the scenarios as run
  // Per account (file order).
  std::vector<double> equity, var, es, worst_pnl;
  std::vector<std::int64_t> worst_scenario, insolvent_scenarios;
  std::vector<std::uint8_t> status;        // today's
  std::vector<double> named_pnl;           // [account][scenario], named only
  std::vector<std::uint8_t> named_status;  // [account][scenario], named only
  // The vault.
  double vault_var = 0, vault_es = 0, bad_debt_mean = 0, bad_debt_var = 0, bad_debt_es = 0;
  std::vector<double> contributions;   // per underlying; sums to vault_es
  std::vector<std::int64_t> vault_tail;  // the m worst scenarios, worst first
  std::string device;
  double seconds = 0;
};

// m = max(1, ceil((1 − A)·N − 1e-9)).
std::int32_t tail_count(double confidence, std::int64_t scenarios);

// Today's ATM vol of an underlying: the SVI mark vol at k = 0 of the expiry nearest
// to 30 days after the market's time (the earlier on a tie). Throws input_error
// naming `where` when the market has no unexpired slice.
double atm_vol(const UnderlyingMarket& m, const std::string& where);
// atm_vol of each of `underlyings` in `market`; where one has none, NaN, or the
// input_error when `required`.
std::vector<double> atm_vols(const std::vector<std::string>& underlyings, const Market& market, bool required);

// Lower Cholesky factor of a U×U correlation matrix; input_error when it is not
// positive definite.
std::vector<double> cholesky(const std::vector<double>& correlation, std::int32_t n);

using StressProgress = std::function<void(std::int64_t done, std::int64_t total)>;

// Runs `spec` over the book at `market`. Named scenarios also run the §4 margin at
// each shocked market (statuses and liquidatable counts).
StressResult run_stress(const Book& book, const Market& market, const Methodology& methodology,
                        const StressSpec& spec, Device device, const StressProgress& progress = {});

// One group's share of a run (stress --workers): the per-account columns of accounts
// [begin, end) and their per-scenario sums (bad debt, insolvent, liquidatable); the
// vault's per-underlying PnL, over the whole book, as every part computes it. No
// vault-level measures: merge_stress adds them.
StressResult run_stress_accounts(const Book& book, const Market& market, const Methodology& methodology,
                                 const StressSpec& spec, Device device, std::int64_t begin, std::int64_t end,
                                 const StressProgress& progress = {});
// The parts of one run, in any order, covering the book's accounts in ranges that
// start at multiples of detail::kStressGroupAccounts: the same bits as run_stress.
StressResult merge_stress(std::vector<StressResult> parts);
// VaR, ES, bad-debt measures and contributions from a result's per-scenario columns.
void finish_stress(StressResult& r);

}  // namespace vaultrisk
