// The engine's per-item work, written once for every backend: price an instrument
// and its scenario row, aggregate one (account, underlying) block, total one account.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/book.hpp"
#include "kernels/layout.hpp"
#include "kernels/simd_pricing.hpp"
#include "pricing/black76.hpp"
#include "pricing/svi.hpp"
#include "pricing/vol_shock.hpp"

namespace vaultrisk::detail {

// True when an instrument cannot be valued with the current market: an unexpired
// option with no SVI slice for its expiry, or whose slice gives w <= 0.
struct InstrumentInvalid {
  EngineView v;
  VR_HD bool operator()(std::int64_t i) const {
    if (v.inst_kind[i] != static_cast<std::uint8_t>(InstrumentKind::option)) return false;
    const UnderlyingState s = v.und[v.inst_underlying[i]];
    const double t = year_fraction(v.inst_expiry[i], s.time);
    if (!(t > 0.0)) return false;
    if (v.inst_vol) return !(v.inst_vol[i] >= 0.0 && is_finite(v.inst_vol[i]));
    const std::int32_t slice = v.slot_slice[v.inst_slot[i]];
    if (slice < 0) return true;
    const double forward = s.spot * exp(s.rate * t);
    return is_nan(svi_vol(v.slices[slice], v.inst_strike[i], forward, t));
  }
};

// Prices instrument i at the mark and under every scenario of its underlying.
// Writes the scenario row as V_j - V per unit, which the blocks weight by quantity.
struct PriceInstrument {
  EngineView v;
  VR_HD void operator()(std::int64_t i) const {
    const std::int32_t u = v.inst_underlying[i];
    const UnderlyingState s = v.und[u];
    const MarginParams mp = v.margin[u];
    double* row = v.scen_dv + i * v.scen_stride;
    const double* spot_mult = v.scen_spot + mp.scen_begin;

    if (v.inst_kind[i] == static_cast<std::uint8_t>(InstrumentKind::perp)) {
      write_greeks(i, OptionValue{s.spot, 1.0, 0.0, 0.0, 0.0, 0.0}, 0.0);
      for (std::int32_t j = 0; j < mp.scen_count; ++j) row[j] = s.spot * spot_mult[j] - s.spot;
      return;
    }
    const bool call = v.inst_call[i] != 0;
    const double strike = v.inst_strike[i];
    const double tte = v.inst_expiry[i] - s.time;
    const double t = tte / kSecondsPerYear;
    if (!(t > 0.0)) {  // expired: intrinsic at the (shocked) spot
      const double base = intrinsic(call, s.spot, strike);
      write_greeks(i, OptionValue{base, 0.0, 0.0, 0.0, 0.0, 0.0}, 0.0);
      for (std::int32_t j = 0; j < mp.scen_count; ++j)
        row[j] = intrinsic(call, s.spot * spot_mult[j], strike) - base;
      return;
    }
    const double forward = s.spot * exp(s.rate * t);
    const double discount = exp(-s.rate * t);
    const double sqrt_t = sqrt(t);
    const double vol = v.inst_vol ? v.inst_vol[i] : svi_vol(v.slices[v.slot_slice[v.inst_slot[i]]], strike, forward, t);
    const OptionValue o = black76(call, s.spot, strike, t, s.rate, vol);
    write_greeks(i, o, vol);

    const VolShock shock = vol_shock(mp.vol_shock, tte);
    const std::int8_t* modes = v.scen_vol + mp.scen_begin;
#if !defined(__CUDA_ARCH__)
    // On the CPU, four scenarios at a time where SLEEF and AVX2 are at hand.
    black_formula_row(call, strike, discount, o.price, row, mp.scen_count, [&](std::int32_t j, double& f, double& sd) {
      f = forward * spot_mult[j];
      sd = shocked_vol(static_cast<VolMode>(modes[j]), vol, shock, mp.vol_shock.up_floor) * sqrt_t;
    });
#else
    for (std::int32_t j = 0; j < mp.scen_count; ++j) {
      const double sv =
          shocked_vol(static_cast<VolMode>(modes[j]), vol, shock, mp.vol_shock.up_floor);
      row[j] = black_formula(call, strike, forward * spot_mult[j], sv * sqrt_t, discount) - o.price;
    }
#endif
  }

  VR_HD void write_greeks(std::int64_t i, const OptionValue& o, double vol) const {
    v.price[i] = o.price;
    v.vol[i] = vol;
    v.delta[i] = o.delta;
    v.gamma[i] = o.gamma;
    v.vega[i] = o.vega;
    v.theta[i] = o.theta;
    v.rho[i] = o.rho;
  }
};

// "First one on ties" for the worst scenario: PnLs within kWorstTieRel of each
// other are ties, so the choice does not hang on rounding (a far out-of-the-money
// option is worth ~0 under several scenarios, whose PnLs then differ in the last
// ulp only, and differently on CPU, GPU or another library). `scan` stays exact.
inline constexpr double kWorstTieRel = 1e-12;
VR_HD_INLINE bool worst_improves(double pnl, double worst_pnl) {
  return pnl < worst_pnl - kWorstTieRel * fabs(worst_pnl);
}

// Aggregates one (account, underlying) block: MtM, Greeks, scenario scan and the
// margin of that underlying. `ids` maps the k-th work item to a block (null: identity).
// `Path` only tells apart the copies built for different instruction sets from this
// one source (0: the default build, CUDA included; 1: kernels/engine_avx2.cpp).
template <int Path>
struct AggregateBlockOf {
  EngineView v;
  const std::int32_t* ids;
  VR_HD void operator()(std::int64_t k) const {
    const std::int64_t b = ids ? ids[k] : k;
    const std::int64_t p0 = v.block_begin[b], p1 = v.block_begin[b + 1];
    const std::int32_t u = v.block_underlying[b];
    const UnderlyingState s = v.und[u];
    const MarginParams mp = v.margin[u];

    double mtm = 0, delta = 0, gamma = 0, vega = 0, theta = 0, rho = 0;
    double perp = 0, short_opt = 0, gross = 0;
    // Perps and options mix at random in a block, and so do long and short, so the
    // kind is a weight of 0 or 1, not a branch (a branch would be mispredicted on
    // about every other position). The sums keep
    // the bits of a plain if/else: a perp's row is price = spot, delta = 1 and the
    // other Greeks 0 (PriceInstrument), so spot − entry is price − entry·1; an
    // option's price − entry·0 is its price; and a term that the if/else would skip
    // is ±0, which leaves a sum started at +0 as it was (such a sum is never −0).
    for (std::int64_t p = p0; p < p1; ++p) {
      const std::int32_t i = v.pos_inst[p];
      const double q = v.pos_qty[p];
      const double is_perp = static_cast<double>(v.inst_kind[i]);  // perp = 1, option = 0
      const double is_option = 1.0 - is_perp;
      const double size = fabs(q);
      mtm += q * (v.price[i] - v.pos_entry[p] * is_perp);
      delta += q * v.delta[i];
      gamma += q * v.gamma[i];
      vega += q * v.vega[i];
      theta += q * v.theta[i];
      rho += q * v.rho[i];
      perp += size * is_perp;
      gross += size * is_option;
      short_opt += (size - q) * 0.5 * is_option;  // −q when q < 0, else +0: exact (doubling, halving)
    }
    gross += perp;

    double scan = 0.0, worst_pnl = 0.0;
    std::int32_t worst = -1;
    const auto fold = [&](std::int32_t j, double sum) {
      const double pnl = sum * v.scen_damp[mp.scen_begin + j];
      scan = pnl < scan ? pnl : scan;
      if (worst_improves(pnl, worst_pnl)) {
        worst_pnl = pnl;
        worst = j;
      }
    };
#if !defined(__CUDACC__)
    // On the CPU: positions outer, a run of scenarios inner, four lanes at a time
    // (rows are padded to a multiple of four: Layout::scen_stride), the run's sums
    // held in registers. Each scenario still sums its positions in block order: the
    // same bits as the loop below.
    const std::int32_t padded = padded_scenario_count(mp.scen_count);
    for (std::int32_t j0 = 0; j0 < padded; j0 += kRunLanes * 4) {
      const std::int32_t runs = (padded - j0) / 4 < kRunLanes ? (padded - j0) / 4 : kRunLanes;
      double sum[kRunLanes * 4];
      switch (runs) {
        case 1: sum_rows<1>(p0, p1, j0, sum); break;
        case 2: sum_rows<2>(p0, p1, j0, sum); break;
        case 3: sum_rows<3>(p0, p1, j0, sum); break;
        case 4: sum_rows<4>(p0, p1, j0, sum); break;
        case 5: sum_rows<5>(p0, p1, j0, sum); break;
        case 6: sum_rows<6>(p0, p1, j0, sum); break;
        case 7: sum_rows<7>(p0, p1, j0, sum); break;
        default: sum_rows<8>(p0, p1, j0, sum); break;
      }
      const std::int32_t n = mp.scen_count - j0 < kRunLanes * 4 ? mp.scen_count - j0 : kRunLanes * 4;
      for (std::int32_t k = 0; k < n; ++k) fold(j0 + k, sum[k]);
    }
#else
    // On the GPU: scenario outer, no per-thread PnL array in local memory.
    for (std::int32_t j = 0; j < mp.scen_count; ++j) {
      double sum = 0.0;
      for (std::int64_t p = p0; p < p1; ++p)
        sum += v.pos_qty[p] * v.scen_dv[static_cast<std::int64_t>(v.pos_inst[p]) * v.scen_stride + j];
      fold(j, sum);
    }
#endif

    const double mm_cont = mp.mm_perp * perp * s.spot + mp.mm_short * short_opt * s.spot;
    double im_cont = mm_cont + mp.im_perp * perp * s.spot + mp.im_short * short_opt * s.spot;
    if (s.confidence < mp.low_confidence) im_cont += (1.0 - s.confidence) * gross * s.spot;

    v.b_mtm[b] = mtm;
    v.b_delta[b] = delta;
    v.b_gamma[b] = gamma;
    v.b_vega[b] = vega;
    v.b_theta[b] = theta;
    v.b_rho[b] = rho;
    v.b_scan[b] = scan;
    v.b_worst[b] = worst;
    v.b_mm[b] = mm_cont - mp.mm_scan * scan;
    v.b_im[b] = im_cont - mp.im_scan * scan;
  }

#if !defined(__CUDACC__)
  // Four doubles (a GCC vector: SSE2 pairs in the default build, one AVX register in
  // kernels/engine_avx2.cpp); a run of the CPU loop is up to kRunLanes of them.
  typedef double Lanes __attribute__((vector_size(32)));
  static constexpr std::int32_t kRunLanes = 8;

  // out[4c + l] = Σ_p q_p · row_p[j0 + 4c + l] over positions [p0, p1) in order, c < C.
  // A member, so that each build (Path) has its own copy under its own name.
  template <int C>
  void sum_rows(std::int64_t p0, std::int64_t p1, std::int32_t j0, double* out) const {
    Lanes acc[C];
    for (int c = 0; c < C; ++c) acc[c] = Lanes{0.0, 0.0, 0.0, 0.0};
    for (std::int64_t p = p0; p < p1; ++p) {
      const double q = v.pos_qty[p];
      const Lanes qs = {q, q, q, q};
      const double* row = v.scen_dv + static_cast<std::int64_t>(v.pos_inst[p]) * v.scen_stride + j0;
      for (int c = 0; c < C; ++c) {
        Lanes r;
        __builtin_memcpy(&r, row + 4 * c, sizeof r);
        acc[c] += qs * r;
      }
    }
    __builtin_memcpy(out, acc, sizeof acc);
  }
#endif
};

using AggregateBlock = AggregateBlockOf<0>;

// Blocks ids[k] (or k, when ids is null) for k in [k0, k1), on the CPU's four-lane
// path where it is in use (kernels/engine_avx2.cpp: the scenario runs vectorise four
// wide; no fused multiply-adds, so the sums round as in the default build).
void aggregate_blocks_avx2(const EngineView& v, const std::int32_t* ids, std::int64_t k0, std::int64_t k1);

// Totals one account over its blocks, in block order, and classifies it.
struct AggregateAccount {
  EngineView v;
  const std::int32_t* ids;
  VR_HD void operator()(std::int64_t k) const {
    const std::int64_t a = ids ? ids[k] : k;
    double equity = v.cash[a], mm = 0.0, im = 0.0;
    for (std::int64_t b = v.acct_block_begin[a]; b < v.acct_block_begin[a + 1]; ++b) {
      equity += v.b_mtm[b];
      mm += v.b_mm[b];
      im += v.b_im[b];
    }
    const double mm_surplus = equity - mm, im_surplus = equity - im;
    v.a_equity[a] = equity;
    v.a_mm[a] = mm;
    v.a_im[a] = im;
    v.a_mm_surplus[a] = mm_surplus;
    v.a_im_surplus[a] = im_surplus;
    v.a_status[a] = static_cast<std::uint8_t>(classify_account(equity, mm, im));
  }
};

// Writes new quantities and entries into the positions' slots.
struct PatchPositions {
  const PositionPatch* patch;
  double* qty;
  double* entry;
  VR_HD void operator()(std::int64_t k) const {
    qty[patch[k].slot] = patch[k].quantity;
    entry[patch[k].slot] = patch[k].entry;
  }
};

// Writes accounts' new cash.
struct PatchCash {
  const CashPatch* patch;
  double* cash;
  VR_HD void operator()(std::int64_t k) const { cash[patch[k].account] = patch[k].cash; }
};

// True for an account whose status differs from the one its caller last saw.
struct StatusChanged {
  const std::uint8_t* status;
  const std::uint8_t* reported;
  VR_HD bool operator()(std::int32_t a) const { return status[a] != reported[a]; }
};

// Packs account ids[k]'s numbers into out[k]; with `mark`, the status it reports
// becomes the one its caller has seen.
struct PackAccount {
  EngineView v;
  const std::int32_t* ids;
  AccountChange* out;
  std::uint8_t* reported;
  bool mark;
  VR_HD void operator()(std::int64_t k) const {
    const std::int32_t a = ids[k];
    AccountChange c;
    c.account = a;
    c.status = v.a_status[a];
    c.reported = reported[a];
    c.equity = v.a_equity[a];
    c.mm = v.a_mm[a];
    c.im = v.a_im[a];
    c.mm_surplus = v.a_mm_surplus[a];
    c.im_surplus = v.a_im_surplus[a];
    out[k] = c;
    if (mark) reported[a] = c.status;
  }
};

}  // namespace vaultrisk::detail
