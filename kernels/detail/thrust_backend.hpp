// One backend implementation over Thrust, instantiated per device system
// (OpenMP in backend_omp.cpp, CUDA in cuda/backend_cuda.cu). `System` supplies
// the vector type, the execution policy and synchronisation.
#pragma once

#include <algorithm>
#include <map>

#include <thrust/copy.h>
#include <thrust/find.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>

#include <vector>

#include "kernels/backend.hpp"
#include "kernels/functors.hpp"

namespace vaultrisk::detail {

// Temporary storage for Thrust algorithms (copy_if's flags and scan, find_if's
// reduction), kept between calls: once warm, a tick allocates nothing and touches
// no fresh pages (on the GPU: no cudaMalloc or cudaFree, which synchronise the
// device). Blocks are reused best-fit and freed with the backend. One thread at a
// time, as the backend itself.
template <class System>
class TempCache {
 public:
  using value_type = char;
  explicit TempCache(const System& system) : system_(&system) {}
  TempCache(const TempCache&) = delete;
  TempCache& operator=(const TempCache&) = delete;
  ~TempCache() {
    for (auto& [size, p] : free_) system_->free_bytes(p);
    for (auto& [p, size] : used_) system_->free_bytes(p);
  }
  char* allocate(std::ptrdiff_t n) {
    const auto bytes = static_cast<std::size_t>(n);
    auto it = free_.lower_bound(bytes);
    char* p = nullptr;
    std::size_t size = bytes;
    if (it != free_.end()) {
      size = it->first;
      p = it->second;
      free_.erase(it);
    } else {
      p = system_->allocate_bytes(bytes);
    }
    used_.emplace(p, size);
    return p;
  }
  void deallocate(char* p, std::size_t) {
    const auto it = used_.find(p);
    free_.emplace(it->second, p);
    used_.erase(it);
  }

 private:
  const System* system_;
  std::multimap<std::size_t, char*> free_;  // by size
  std::map<char*, std::size_t> used_;
};

template <class System>
class ThrustBackend final : public Backend {
  template <class T>
  using vec = typename System::template vector<T>;

 public:
  std::string name() const override { return system_.name(); }

  void load(const Layout& l) override {
    n_inst_ = l.n_instruments();
    n_blocks_ = l.n_blocks();
    n_accounts_ = l.n_accounts();
    stride_ = l.scen_stride;
    up(inst_underlying_, l.inst_underlying);
    up(inst_slot_, l.inst_slot);
    up(inst_kind_, l.inst_kind);
    up(inst_call_, l.inst_call);
    up(inst_expiry_, l.inst_expiry);
    up(inst_strike_, l.inst_strike);
    up(margin_, l.margin);
    up(scen_spot_, l.scen_spot);
    up(scen_damp_, l.scen_damp);
    up(scen_vol_, l.scen_vol);
    up(pos_inst_, l.pos_inst);
    up(pos_qty_, l.pos_qty);
    up(pos_entry_, l.pos_entry);
    up(block_begin_, l.block_begin);
    up(block_underlying_, l.block_underlying);
    up(und_blocks_, l.und_blocks);
    up(und_accounts_, l.und_accounts);
    up(acct_block_begin_, l.acct_block_begin);
    up(cash_, l.cash);
    und_block_begin_ = l.und_block_begin;
    und_account_begin_ = l.und_account_begin;
    for (vec<double>* t : {&price_, &vol_, &delta_, &gamma_, &vega_, &theta_, &rho_}) t->resize(n_inst_);
    scen_dv_.resize(static_cast<std::size_t>(n_inst_) * stride_);
    for (vec<double>* t : {&b_mtm_, &b_delta_, &b_gamma_, &b_vega_, &b_theta_, &b_rho_, &b_scan_,
                           &b_mm_, &b_im_})
      t->resize(n_blocks_);
    b_worst_.resize(n_blocks_);
    for (vec<double>* t : {&a_equity_, &a_mm_, &a_im_, &a_mm_surplus_, &a_im_surplus_})
      t->resize(n_accounts_);
    a_status_.resize(n_accounts_);
    a_reported_.assign(static_cast<std::size_t>(n_accounts_), std::uint8_t{0});  // healthy until told otherwise
    changed_.resize(static_cast<std::size_t>(n_accounts_));
    system_.synchronize();
  }

  void set_market(const MarketParams& m) override {
    up(und_, m.und);
    up(slot_slice_, m.slot_slice);
    up(slices_, m.slices);
    up(inst_vol_, m.inst_vol);
    system_.synchronize();
  }

  std::int64_t first_invalid(std::int64_t begin, std::int64_t end) override {
    if (begin >= end) return end;
    thrust::counting_iterator<std::int64_t> first(begin), last(end);
    return *thrust::find_if(system_.policy(temp_), first, last, InstrumentInvalid{view()});
  }

  void price(std::int64_t begin, std::int64_t end) override {
    if (begin >= end) return;
    thrust::for_each_n(system_.policy(), thrust::counting_iterator<std::int64_t>(begin), end - begin,
                       PriceInstrument{view()});
  }

  void aggregate_blocks(std::int32_t u) override {
    if (u < 0) {
      blocks(n_blocks_, nullptr);
    } else {
      const std::int64_t b0 = und_block_begin_[u], b1 = und_block_begin_[u + 1];
      blocks(b1 - b0, raw(und_blocks_) + b0);
    }
  }

  void aggregate_accounts(std::int32_t u) override {
    const EngineView v = view();
    if (u < 0) {
      for_n(n_accounts_, AggregateAccount{v, nullptr});
    } else {
      const std::int64_t a0 = und_account_begin_[u], a1 = und_account_begin_[u + 1];
      for_n(a1 - a0, AggregateAccount{v, raw(und_accounts_) + a0});
    }
  }

  void set_cash(const std::vector<double>& cash) override { up(cash_, cash); }

  void patch(const std::vector<PositionPatch>& positions, const std::vector<CashPatch>& cash,
             const std::vector<std::int32_t>& blocks, const std::vector<std::int32_t>& accounts) override {
    const auto n_pos = static_cast<std::int64_t>(positions.size()), n_cash = static_cast<std::int64_t>(cash.size());
    if (n_pos) {
      grow(pos_patch_, positions.size());
      system_.to_device(positions.data(), positions.size(), raw(pos_patch_));
      for_n(n_pos, PatchPositions{raw(pos_patch_), raw(pos_qty_), raw(pos_entry_)});
    }
    if (n_cash) {
      grow(cash_patch_, cash.size());
      system_.to_device(cash.data(), cash.size(), raw(cash_patch_));
      for_n(n_cash, PatchCash{raw(cash_patch_), raw(cash_)});
    }
    // Blocks first (their positions changed), then their accounts (which sum blocks).
    // Grown once, before either list goes in: no reallocation behind a running kernel.
    grow(id_list_, std::max(blocks.size(), accounts.size()));
    const EngineView v = view();
    if (!blocks.empty()) {
      system_.to_device(blocks.data(), blocks.size(), raw(id_list_));
      this->blocks(static_cast<std::int64_t>(blocks.size()), raw(id_list_));
    }
    if (!accounts.empty()) {
      system_.to_device(accounts.data(), accounts.size(), raw(id_list_));  // after the blocks: stream order
      for_n(static_cast<std::int64_t>(accounts.size()), AggregateAccount{v, raw(id_list_)});
    }
  }

  void synchronize() override { system_.synchronize(); }

  void download(InstrumentTable& o) override {
    down(price_, o.price);
    down(vol_, o.vol);
    down(delta_, o.delta);
    down(gamma_, o.gamma);
    down(vega_, o.vega);
    down(theta_, o.theta);
    down(rho_, o.rho);
  }
  void download(BlockTable& o) override {
    down(b_mtm_, o.mtm);
    down(b_delta_, o.delta);
    down(b_gamma_, o.gamma);
    down(b_vega_, o.vega);
    down(b_theta_, o.theta);
    down(b_rho_, o.rho);
    down(b_scan_, o.scan);
    down(b_mm_, o.mm);
    down(b_im_, o.im);
    down(b_worst_, o.worst);
  }
  void download_blocks(std::int64_t b0, std::int64_t b1, BlockTable& o) override {
    down_range(b_mtm_, b0, b1, o.mtm);
    down_range(b_delta_, b0, b1, o.delta);
    down_range(b_gamma_, b0, b1, o.gamma);
    down_range(b_vega_, b0, b1, o.vega);
    down_range(b_theta_, b0, b1, o.theta);
    down_range(b_rho_, b0, b1, o.rho);
    down_range(b_scan_, b0, b1, o.scan);
    down_range(b_mm_, b0, b1, o.mm);
    down_range(b_im_, b0, b1, o.im);
    down_range(b_worst_, b0, b1, o.worst);
  }
  void download(AccountTable& o) override {
    down(a_equity_, o.equity);
    down(a_mm_, o.mm);
    down(a_im_, o.im);
    down(a_mm_surplus_, o.mm_surplus);
    down(a_im_surplus_, o.im_surplus);
    down(a_status_, o.status);
  }
  void download_status(std::vector<std::uint8_t>& out) override { down(a_status_, out); }
  void set_reported(const std::vector<std::uint8_t>& status) override {
    a_reported_.resize(static_cast<std::size_t>(n_accounts_));
    system_.to_device(status.data(), std::min<std::size_t>(status.size(), static_cast<std::size_t>(n_accounts_)),
                      raw(a_reported_));
  }
  void take_status_changes(std::vector<AccountChange>& out) override {
    // The indices of the changed accounts, compacted on the device; only their count
    // and their packed rows come back.
    const auto end = thrust::copy_if(system_.policy(temp_), thrust::counting_iterator<std::int32_t>(0),
                                     thrust::counting_iterator<std::int32_t>(static_cast<std::int32_t>(n_accounts_)),
                                     changed_.begin(), StatusChanged{raw(a_status_), raw(a_reported_)});
    pack(static_cast<std::int64_t>(end - changed_.begin()), true, out);
  }
  void take_status_changes_among(const std::vector<std::int32_t>& accounts, std::vector<AccountChange>& out) override {
    out.clear();
    if (accounts.empty()) return;
    grow(id_list_, accounts.size());
    grow(changed_, accounts.size());
    system_.to_device(accounts.data(), accounts.size(), raw(id_list_));
    const auto end = thrust::copy_if(system_.policy(temp_), id_list_.begin(),
                                     id_list_.begin() + static_cast<std::ptrdiff_t>(accounts.size()), changed_.begin(),
                                     StatusChanged{raw(a_status_), raw(a_reported_)});
    pack(static_cast<std::int64_t>(end - changed_.begin()), true, out);
  }
  void gather_accounts(const std::vector<std::int32_t>& accounts, std::vector<AccountChange>& out) override {
    if (changed_.size() < accounts.size()) changed_.resize(accounts.size());
    system_.to_device(accounts.data(), accounts.size(), raw(changed_));
    pack(static_cast<std::int64_t>(accounts.size()), false, out);
  }
  void download_scenarios(std::int64_t begin, std::int64_t end, std::vector<double>& out) override {
    out.resize(static_cast<std::size_t>(end - begin) * stride_);
    system_.synchronize();
    thrust::copy(scen_dv_.begin() + begin * stride_, scen_dv_.begin() + end * stride_, out.begin());
  }

 private:
  template <class T>
  static void grow(vec<T>& d, std::size_t n) {
    if (d.size() < n) d.resize(n);
  }
  // Packs accounts changed_[0, n) into packed_ and copies them off in one piece.
  void pack(std::int64_t n, bool mark, std::vector<AccountChange>& out) {
    out.resize(static_cast<std::size_t>(n));
    if (n == 0) return;
    if (packed_.size() < static_cast<std::size_t>(n)) packed_.resize(static_cast<std::size_t>(n));
    for_n(n, PackAccount{view(), raw(changed_), raw(packed_), raw(a_reported_), mark});
    system_.to_host(raw(packed_), static_cast<std::size_t>(n), out.data());
  }
  template <class F>
  void for_n(std::int64_t n, F f) {
    if (n > 0)
      thrust::for_each_n(system_.policy(), thrust::counting_iterator<std::int64_t>(0), n, f);
  }
  // The block pass over ids[0, n) (null: blocks [0, n)): on the CPU, the four-lane
  // build of the same functor where the CPU has AVX2 (the same bits).
  void blocks(std::int64_t n, const std::int32_t* ids) {
    const EngineView v = view();
    if constexpr (System::kCpu) {
      if (simd_pricing()) {  // in runs of blocks: the view is copied once a run, not once a block
        constexpr std::int64_t kRun = 64;
        for_n((n + kRun - 1) / kRun, [v, ids, n](std::int64_t r) {
          aggregate_blocks_avx2(v, ids, r * kRun, std::min(n, (r + 1) * kRun));
        });
        return;
      }
    }
    for_n(n, AggregateBlock{v, ids});
  }
  template <class T>
  static void up(vec<T>& d, const std::vector<T>& h) {
    d.resize(h.size());
    if (!h.empty()) thrust::copy(h.begin(), h.end(), d.begin());
  }
  template <class T>
  void down(const vec<T>& d, std::vector<T>& h) {
    system_.synchronize();
    h.resize(d.size());
    if (!h.empty()) thrust::copy(d.begin(), d.end(), h.begin());
  }
  template <class T>
  void down_range(const vec<T>& d, std::int64_t b0, std::int64_t b1, std::vector<T>& h) {
    system_.synchronize();
    h.resize(static_cast<std::size_t>(b1 - b0));
    if (b1 > b0) thrust::copy(d.begin() + b0, d.begin() + b1, h.begin());
  }
  template <class T>
  static T* raw(vec<T>& d) {
    return thrust::raw_pointer_cast(d.data());
  }

  EngineView view() {
    return EngineView{raw(inst_underlying_), raw(inst_slot_), raw(inst_kind_), raw(inst_call_),
                      raw(inst_expiry_), raw(inst_strike_), raw(und_), raw(slot_slice_),
                      raw(slices_), inst_vol_.empty() ? nullptr : raw(inst_vol_), raw(margin_), raw(scen_spot_), raw(scen_damp_),
                      raw(scen_vol_), stride_, raw(price_), raw(vol_), raw(delta_), raw(gamma_),
                      raw(vega_), raw(theta_), raw(rho_), raw(scen_dv_), raw(pos_inst_),
                      raw(pos_qty_), raw(pos_entry_), raw(block_begin_), raw(block_underlying_),
                      raw(b_mtm_), raw(b_delta_), raw(b_gamma_), raw(b_vega_), raw(b_theta_),
                      raw(b_rho_), raw(b_scan_), raw(b_mm_), raw(b_im_), raw(b_worst_),
                      raw(acct_block_begin_), raw(cash_), raw(a_equity_), raw(a_mm_), raw(a_im_),
                      raw(a_mm_surplus_), raw(a_im_surplus_), raw(a_status_)};
  }

  System system_;
  TempCache<System> temp_{system_};  // after system_, which it uses
  std::int64_t n_inst_ = 0, n_blocks_ = 0, n_accounts_ = 0;
  std::int32_t stride_ = 0;

  vec<std::int32_t> inst_underlying_, inst_slot_;
  vec<std::uint8_t> inst_kind_, inst_call_;
  vec<double> inst_expiry_, inst_strike_;
  vec<UnderlyingState> und_;
  vec<std::int32_t> slot_slice_;
  vec<SviParams> slices_;
  vec<double> inst_vol_;  // empty: SVI vols
  vec<MarginParams> margin_;
  vec<double> scen_spot_, scen_damp_;
  vec<std::int8_t> scen_vol_;
  vec<double> price_, vol_, delta_, gamma_, vega_, theta_, rho_, scen_dv_;
  vec<std::int32_t> pos_inst_;
  vec<double> pos_qty_, pos_entry_;
  vec<std::int64_t> block_begin_;
  vec<std::int32_t> block_underlying_, und_blocks_, und_accounts_;
  vec<double> b_mtm_, b_delta_, b_gamma_, b_vega_, b_theta_, b_rho_, b_scan_, b_mm_, b_im_;
  vec<std::int32_t> b_worst_;
  vec<std::int64_t> acct_block_begin_;
  vec<double> cash_;
  vec<double> a_equity_, a_mm_, a_im_, a_mm_surplus_, a_im_surplus_;
  vec<std::uint8_t> a_status_;
  vec<std::uint8_t> a_reported_;    // per account: the status its caller has seen
  vec<std::int32_t> changed_;       // compacted account indices (take_status_changes, gather_accounts)
  vec<AccountChange> packed_;       // their rows, copied off in one piece
  vec<PositionPatch> pos_patch_;    // in-place changes (patch)
  vec<CashPatch> cash_patch_;
  vec<std::int32_t> id_list_;       // blocks, then accounts, to re-aggregate
  // Host copies: per-underlying ranges of the block and account id lists.
  std::vector<std::int64_t> und_block_begin_, und_account_begin_;
};

}  // namespace vaultrisk::detail
