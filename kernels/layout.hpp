// Plain-old-data the kernels read: the book laid out for one-pass aggregation,
// per-underlying methodology and market parameters, and a view of raw pointers.
#pragma once

#include <cstdint>
#include <vector>

#include "pricing/config.hpp"
#include "pricing/svi.hpp"
#include "pricing/vol_shock.hpp"

namespace vaultrisk {

// `error`: the account's equity or a margin is not a finite number. The numeric
// domain at the door (core/limits.hpp) keeps this from happening; should it happen
// anyway, the account is quarantined (an alert, no intent) rather than called healthy.
enum class AccountStatus : std::uint8_t { healthy = 0, margin_call = 1, liquidatable = 2, error = 3 };

// SPEC §4's status, with non-finite values quarantined (NaN < 0 is false, so a plain
// comparison would call a NaN account healthy). x - x == 0 exactly when x is finite.
VR_HD_INLINE AccountStatus classify_account(double equity, double mm, double im) {
  if (!(equity - equity == 0.0 && mm - mm == 0.0 && im - im == 0.0)) return AccountStatus::error;
  return equity - mm < 0.0 ? AccountStatus::liquidatable : equity - im < 0.0 ? AccountStatus::margin_call : AccountStatus::healthy;
}

// Methodology of one underlying, flattened for the device.
struct MarginParams {
  std::int32_t scen_begin;  // first scenario in the flat scenario arrays
  std::int32_t scen_count;
  VolShockParams vol_shock;
  double mm_perp, mm_short, im_perp, im_short, low_confidence, mm_scan, im_scan;
};

// Market state of one underlying.
struct UnderlyingState {
  double spot, rate, confidence, time;
};

// Scenario rows are padded with zeros to a multiple of four scenarios, so that the
// CPU block pass (kernels/functors.hpp) reads every row in whole four-lane pieces.
constexpr std::int32_t padded_scenario_count(std::int32_t count) { return (count + 3) / 4 * 4; }

// The book sorted for the kernels ("internal order"):
// - instruments by (underlying, expiry), so one underlying is one contiguous range
//   and one (underlying, expiry) "slot" is one contiguous range;
// - positions by (account, underlying), so each (account, underlying) "block" is a
//   contiguous segment and each account's blocks are contiguous too.
struct Layout {
  std::int32_t n_underlyings = 0;

  std::vector<std::int32_t> inst_underlying, inst_slot;
  std::vector<std::uint8_t> inst_kind, inst_call;
  std::vector<double> inst_expiry, inst_strike;
  std::vector<std::int32_t> und_inst_begin;  // n_underlyings + 1

  std::vector<double> slot_expiry;           // distinct option expiries per underlying
  std::vector<std::int32_t> und_slot_begin;  // n_underlyings + 1

  std::vector<std::int32_t> pos_inst;  // internal instrument index
  std::vector<double> pos_qty, pos_entry;

  std::vector<std::int32_t> pos_slot;     // per book position (file order): its index in pos_*; kept on the host
  std::vector<std::int64_t> block_begin;  // n_blocks + 1, into positions
  std::vector<std::int32_t> block_account, block_underlying;
  std::vector<std::int32_t> und_blocks;        // block ids grouped by underlying
  std::vector<std::int64_t> und_block_begin;   // n_underlyings + 1
  std::vector<std::int32_t> und_accounts;      // accounts holding the underlying, grouped
  std::vector<std::int64_t> und_account_begin; // n_underlyings + 1

  std::vector<std::int64_t> acct_block_begin;  // n_accounts + 1
  std::vector<double> cash;

  std::vector<MarginParams> margin;  // per underlying
  std::vector<double> scen_spot, scen_damp;
  std::vector<std::int8_t> scen_vol;
  std::int32_t scen_stride = 0;  // row width of the scenario table: padded_scenario_count of the largest (padding is 0)

  std::int64_t n_instruments() const { return static_cast<std::int64_t>(inst_kind.size()); }
  std::int64_t n_blocks() const { return static_cast<std::int64_t>(block_account.size()); }
  std::int64_t n_accounts() const { return static_cast<std::int64_t>(cash.size()); }
};

// Market inputs uploaded on every change; all small (per underlying and per expiry).
struct MarketParams {
  std::vector<UnderlyingState> und;
  std::vector<std::int32_t> slot_slice;  // per slot: index into slices, -1 when none
  std::vector<SviParams> slices;
  // Per instrument (internal order): a mark vol that replaces the SVI one (stress
  // scenarios fix each option's vol, SPEC §8). Empty: the smile gives every vol.
  std::vector<double> inst_vol;
};

// Results, in internal order.
struct InstrumentTable {
  std::vector<double> price, vol, delta, gamma, vega, theta, rho;
};
struct BlockTable {
  std::vector<double> mtm, delta, gamma, vega, theta, rho, scan, mm, im;
  std::vector<std::int32_t> worst;
};
struct AccountTable {
  std::vector<double> equity, mm, im, mm_surplus, im_surplus;
  std::vector<std::uint8_t> status;
};

// In-place changes (Engine::update_positions), packed for one copy to the device.
struct PositionPatch {
  std::int64_t slot;  // index into the layout's positions
  double quantity, entry;
};
struct CashPatch {
  std::int32_t account;
  double cash;
};

// One account's numbers as an alert or an intent needs them, packed, so that any set
// of accounts comes off the device in one copy.
struct AccountChange {
  std::int32_t account;   // index, file order
  std::uint8_t status;    // now
  std::uint8_t reported;  // the status the caller last saw (see Engine::take_status_changes)
  double equity, mm, im, mm_surplus, im_surplus;
};

// Raw pointers into backend memory; what every functor captures.
struct EngineView {
  const std::int32_t* inst_underlying;
  const std::int32_t* inst_slot;
  const std::uint8_t* inst_kind;
  const std::uint8_t* inst_call;
  const double* inst_expiry;
  const double* inst_strike;

  const UnderlyingState* und;
  const std::int32_t* slot_slice;
  const SviParams* slices;
  const double* inst_vol;  // null: SVI vols

  const MarginParams* margin;
  const double* scen_spot;
  const double* scen_damp;
  const std::int8_t* scen_vol;
  std::int32_t scen_stride;

  double* price;
  double* vol;
  double* delta;
  double* gamma;
  double* vega;
  double* theta;
  double* rho;
  double* scen_dv;  // [instrument][scenario]: V_j - V per unit

  const std::int32_t* pos_inst;
  const double* pos_qty;
  const double* pos_entry;

  const std::int64_t* block_begin;
  const std::int32_t* block_underlying;
  double* b_mtm;
  double* b_delta;
  double* b_gamma;
  double* b_vega;
  double* b_theta;
  double* b_rho;
  double* b_scan;
  double* b_mm;
  double* b_im;
  std::int32_t* b_worst;

  const std::int64_t* acct_block_begin;
  const double* cash;
  double* a_equity;
  double* a_mm;
  double* a_im;
  double* a_mm_surplus;
  double* a_im_surplus;
  std::uint8_t* a_status;
};

}  // namespace vaultrisk
