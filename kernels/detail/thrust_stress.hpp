// The stress backend over Thrust, instantiated per device system like the engine
// (OpenMP in backend_omp.cpp, CUDA in cuda/backend_cuda.cu). Everything stays in
// the system's memory between batches; per batch, the host sends the scenarios (or
// the device draws them) and gets back per-scenario totals only.
#pragma once

#include <thrust/copy.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "core/error.hpp"
#include "kernels/stress_backend.hpp"
#include "kernels/simd_pricing.hpp"
#include "kernels/stress_functors.hpp"

namespace vaultrisk::detail {

// `System` also gives kStressChunk, the accounts per chunk of the per-scenario
// totals: fixed per system (so sums do not depend on threads), larger on the CPU (few
// threads, rows hot in cache) than on the GPU (one chunk per thread).
template <class System>
class ThrustStress final : public StressBackend {
  template <class T>
  using vec = typename System::template vector<T>;

 public:
  std::string name() const override { return system_.name(); }

  void load(const StressLayout& l, std::int32_t batch, std::int32_t tail_m, bool keep_pnl) override {
    // The CPU sums each account's row on the stack unless the matrix is downloaded.
    keep_pnl_ = keep_pnl || !System::kStressRowsOnStack;
    batch_ = batch;
    tail_m_ = tail_m;
    n_inst_ = static_cast<std::int64_t>(l.inst_und.size());
    n_acc_ = static_cast<std::int64_t>(l.equity.size());
    n_und_ = static_cast<std::int32_t>(l.und_spot.size());
    horizon_ = l.horizon;
    up(inst_und_, l.inst_und);
    up(inst_kind_, l.inst_kind);
    up(inst_call_, l.inst_call);
    up(inst_strike_, l.inst_strike);
    up(inst_t_, l.inst_t);
    up(inst_price_, l.inst_price);
    up(inst_vol_, l.inst_vol);
    up(net_qty_, l.net_qty);
    up(und_spot_, l.und_spot);
    up(und_rate_, l.und_rate);
    up(acct_pos_begin_, l.acct_pos_begin);
    up(pos_inst_, l.pos_inst);
    up(pos_qty_, l.pos_qty);
    up(equity_, l.equity);
    const auto b = static_cast<std::size_t>(batch);
    spot_mult_.resize(b * n_und_);
    dvol_.resize(b * n_und_);
    normals_.resize(b * 2 * n_und_);
    dv_.resize(b * n_inst_);
    pnl_.resize(keep_pnl_ ? b * n_acc_ : 0);
    vault_und_.resize(b * n_und_);
    n_chunks_ = (n_acc_ + System::kStressChunk - 1) / System::kStressChunk;
    part_bad_.resize(b * n_chunks_);
    part_ins_.resize(b * n_chunks_);
    tail_.resize(static_cast<std::size_t>(tail_m) * n_acc_);
    worst_loss_.resize(n_acc_);
    thrust::fill(system_.policy(), worst_loss_.begin(), worst_loss_.end(), -std::numeric_limits<double>::infinity());
    worst_index_.resize(n_acc_);
    thrust::fill(system_.policy(), worst_index_.begin(), worst_index_.end(), std::int64_t{-1});
    insolvent_.resize(n_acc_);
    thrust::fill(system_.policy(), insolvent_.begin(), insolvent_.end(), std::int64_t{0});
    system_.synchronize();
  }

  void set_scenarios(const std::vector<double>& spot_mult, const std::vector<double>& dvol,
                     std::int32_t count) override {
    count_ = count;
    thrust::copy(spot_mult.begin(), spot_mult.begin() + static_cast<std::ptrdiff_t>(count) * n_und_, spot_mult_.begin());
    thrust::copy(dvol.begin(), dvol.begin() + static_cast<std::ptrdiff_t>(count) * n_und_, dvol_.begin());
  }

  void monte_carlo(const McModel& m, std::int64_t first_path, std::int32_t count) override {
    count_ = count;
    up(cholesky_, m.cholesky);
    up(sigma_, m.sigma);
    up(vol_of_vol_, m.vol_of_vol);
    const std::uint64_t per_path = 2 * static_cast<std::uint64_t>(n_und_);
    system_.normals(raw(normals_), m.seed, static_cast<std::uint64_t>(first_path) * per_path,
                    static_cast<std::size_t>(count) * per_path);
    for_n(count, McScenario{raw(normals_), raw(cholesky_), raw(sigma_), raw(vol_of_vol_), m.rho, horizon_, n_und_,
                            raw(spot_mult_), raw(dvol_)});
  }

  void run(std::int64_t first, std::int64_t inserted) override {
    StressView v = view();
    v.first = first;
    v.inserted = inserted;
    for_n(n_inst_, ShockInstrument{v});
    for_n((count_ + kVaultScenarioBlock - 1) / kVaultScenarioBlock, VaultByUnderlying{v});
    if constexpr (System::kCpu) {  // four lanes where the CPU has them
      if (simd_pricing()) {
        for_n(n_chunks_, [v](std::int64_t c) { account_chunks_avx2(v, c, c + 1); });
        return;
      }
    }
    for_n(n_chunks_, AccountChunk{v});
  }

  void download(BatchTotals& o, bool with_pnl) override {
    system_.synchronize();
    const auto c = static_cast<std::size_t>(count_);
    o.vault_und.resize(c * n_und_);
    thrust::copy(vault_und_.begin(), vault_und_.begin() + static_cast<std::ptrdiff_t>(c * n_und_), o.vault_und.begin());
    o.spot_mult.resize(c * n_und_);
    thrust::copy(spot_mult_.begin(), spot_mult_.begin() + static_cast<std::ptrdiff_t>(c * n_und_), o.spot_mult.begin());
    o.dvol.resize(c * n_und_);
    thrust::copy(dvol_.begin(), dvol_.begin() + static_cast<std::ptrdiff_t>(c * n_und_), o.dvol.begin());
    // Chunk partials come back whole (chunks × batch, small) and are summed in chunk order.
    std::vector<double> bad(part_bad_.size());
    std::vector<std::int64_t> ins(part_ins_.size());
    thrust::copy(part_bad_.begin(), part_bad_.end(), bad.begin());
    thrust::copy(part_ins_.begin(), part_ins_.end(), ins.begin());
    // Two levels, both in order: chunks into their group of kStressGroupAccounts
    // accounts, then groups. A worker that runs one group alone (stress --workers)
    // produces that group's sum bit for bit, and the merge adds groups the same way.
    o.bad_debt.assign(c, 0.0);
    o.insolvent.assign(c, 0);
    const std::int64_t per_group = kStressGroupAccounts / System::kStressChunk;
    std::vector<double> group(c);
    for (std::int64_t g0 = 0; g0 < n_chunks_; g0 += per_group) {
      std::fill(group.begin(), group.end(), 0.0);
      for (std::int64_t k = g0; k < std::min(n_chunks_, g0 + per_group); ++k)
        for (std::size_t b = 0; b < c; ++b) {
          group[b] += bad[static_cast<std::size_t>(k) * batch_ + b];
          o.insolvent[b] += ins[static_cast<std::size_t>(k) * batch_ + b];
        }
      for (std::size_t b = 0; b < c; ++b) o.bad_debt[b] += group[b];
    }
    if (with_pnl) {
      VR_EXPECTS(keep_pnl_, "a PnL matrix kept (load with keep_pnl)");
      o.pnl.resize(pnl_.size());
      thrust::copy(pnl_.begin(), pnl_.end(), o.pnl.begin());
    } else {
      o.pnl.clear();
    }
  }

  void download(TailState& o) override {
    system_.synchronize();
    down(tail_, o.tail);
    down(worst_loss_, o.worst_loss);
    down(worst_index_, o.worst_index);
    down(insolvent_, o.insolvent);
  }

 private:
  template <class T>
  static T* raw(vec<T>& v) {
    return thrust::raw_pointer_cast(v.data());
  }
  template <class T>
  void up(vec<T>& dst, const std::vector<T>& src) {
    dst.resize(src.size());
    thrust::copy(src.begin(), src.end(), dst.begin());
  }
  template <class T>
  void down(vec<T>& src, std::vector<T>& dst) {
    dst.resize(src.size());
    thrust::copy(src.begin(), src.end(), dst.begin());
  }
  template <class F>
  void for_n(std::int64_t n, F f) {
    if (n > 0) system_.for_n(n, f);
  }

  StressView view() {
    StressView v{};
    v.inst_und = raw(inst_und_);
    v.inst_kind = raw(inst_kind_);
    v.inst_call = raw(inst_call_);
    v.inst_strike = raw(inst_strike_);
    v.inst_t = raw(inst_t_);
    v.inst_price = raw(inst_price_);
    v.inst_vol = raw(inst_vol_);
    v.net_qty = raw(net_qty_);
    v.und_spot = raw(und_spot_);
    v.und_rate = raw(und_rate_);
    v.n_und = n_und_;
    v.n_inst = n_inst_;
    v.horizon = horizon_;
    v.acct_pos_begin = raw(acct_pos_begin_);
    v.pos_inst = raw(pos_inst_);
    v.pos_qty = raw(pos_qty_);
    v.n_positions = static_cast<std::int64_t>(pos_qty_.size());
    v.equity = raw(equity_);
    v.n_accounts = n_acc_;
    v.batch = batch_;
    v.count = count_;
    v.spot_mult = raw(spot_mult_);
    v.dvol = raw(dvol_);
    v.dv = raw(dv_);
    v.pnl = keep_pnl_ ? raw(pnl_) : nullptr;
    v.vault_und = raw(vault_und_);
    v.tail_m = tail_m_;
    v.tail = raw(tail_);
    v.worst_loss = raw(worst_loss_);
    v.worst_index = raw(worst_index_);
    v.insolvent = raw(insolvent_);
    v.chunk = System::kStressChunk;
    v.part_bad_debt = raw(part_bad_);
    v.part_insolvent = raw(part_ins_);
    return v;
  }

  System system_;
  std::int32_t batch_ = 0, tail_m_ = 1, n_und_ = 0, count_ = 0;
  std::int64_t n_inst_ = 0, n_acc_ = 0, n_chunks_ = 0;
  bool keep_pnl_ = false;
  double horizon_ = 0.0;
  vec<std::int32_t> inst_und_, pos_inst_;
  vec<std::uint8_t> inst_kind_, inst_call_;
  vec<double> inst_strike_, inst_t_, inst_price_, inst_vol_, net_qty_, und_spot_, und_rate_, pos_qty_, equity_;
  vec<std::int64_t> acct_pos_begin_;
  vec<double> spot_mult_, dvol_, normals_, dv_, pnl_, vault_und_, part_bad_, tail_, worst_loss_;
  vec<double> cholesky_, sigma_, vol_of_vol_;
  vec<std::int64_t> part_ins_, worst_index_, insolvent_;
};

}  // namespace vaultrisk::detail
