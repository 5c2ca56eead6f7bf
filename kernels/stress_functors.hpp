// SPEC §8 stress, the per-item work written once for every backend: shock each
// instrument under a batch of scenarios, sum each account's PnL, keep each
// account's loss tail with the per-scenario totals of each chunk of accounts, and turn normals
// into Monte Carlo scenarios.
//
// A batch holds up to `batch` scenarios; every table is row-major with that stride:
// dv[instrument][b], pnl[account][b], partial totals[chunk][b]. Sums run in a fixed
// order (positions in book order, accounts in chunks of `chunk`), so results do not
// depend on the number of threads, the device or how scenarios are split up.
#pragma once

#include <cstdint>

#include "kernels/book.hpp"
#include "kernels/simd_pricing.hpp"
#include "pricing/config.hpp"
#include "pricing/scenario_shock.hpp"

namespace vaultrisk::detail {

// row[b] += q·x[b]. An AVX2 clone of it (GCC target_clones) measured no faster on
// the 2-core machine: the loop waits on the instrument rows it reads, not on arithmetic.
VR_HD_INLINE void stress_axpy(double* __restrict__ row, const double* __restrict__ x, double q, std::int32_t n) {
  for (std::int32_t b = 0; b < n; ++b) row[b] += q * x[b];
}

// The widest batch: scenarios per pass over the book.
inline constexpr std::int32_t kStressMaxBatch = 1024;

struct StressView {
  // Instruments, file order. `t` is today's year fraction (<= 0: expired); `price`
  // and `vol` today's value per unit and mark vol, from the engine.
  const std::int32_t* inst_und;
  const std::uint8_t* inst_kind;
  const std::uint8_t* inst_call;
  const double* inst_strike;
  const double* inst_t;
  const double* inst_price;
  const double* inst_vol;
  const double* net_qty;   // Σ over every position in the instrument
  const double* und_spot;  // per underlying (the book's order)
  const double* und_rate;
  std::int32_t n_und;
  std::int64_t n_inst;
  double horizon;  // h, years

  // Positions grouped by account (CSR, book order within an account).
  const std::int64_t* acct_pos_begin;
  const std::int32_t* pos_inst;
  const double* pos_qty;
  std::int64_t n_positions;
  const double* equity;  // today's, per account
  std::int64_t n_accounts;

  // The batch.
  std::int32_t batch;  // row stride
  std::int32_t count;  // scenarios in this batch, <= batch
  const double* spot_mult;  // [b][u]
  const double* dvol;       // [b][u]
  double* dv;               // [instrument][b]: V' - V per unit
  double* pnl;              // [account][b]; null on the CPU when no one reads it
  double* vault_und;        // [b][u]: the vault's PnL from positions on u

  // Loss tails: the `tail_m` largest losses of each account so far, a min-heap
  // (its first element is the smallest kept), filled with `inserted` of them.
  std::int32_t tail_m;
  std::int64_t inserted;  // scenarios already folded into every tail before this batch
  std::int64_t first;     // global index of the batch's first scenario
  double* tail;           // [account][tail_m]
  double* worst_loss;     // largest loss so far (-inf before any)
  std::int64_t* worst_index;
  std::int64_t* insolvent;  // scenarios with equity + pnl < 0

  // Per-scenario totals over chunks of accounts.
  std::int64_t chunk;
  double* part_bad_debt;          // [chunk][b]
  std::int64_t* part_insolvent;   // [chunk][b]
};

// Shocked value minus today's, per unit, of instrument i under every scenario of the batch.
struct ShockInstrument {
  StressView v;
  VR_HD void operator()(std::int64_t i) const {
    const std::int32_t u = v.inst_und[i];
    const double spot = v.und_spot[u];
    double* row = v.dv + i * v.batch;
    if (v.inst_kind[i] == static_cast<std::uint8_t>(InstrumentKind::perp)) {
      for (std::int32_t b = 0; b < v.count; ++b) row[b] = spot * (v.spot_mult[b * v.n_und + u] - 1.0);
      return;
    }
    const double base = v.inst_price[i];
    const ShockedOption option(v.inst_call[i] != 0, spot, v.inst_strike[i], v.inst_t[i], v.und_rate[u], v.inst_vol[i],
                               v.horizon);
#if !defined(__CUDA_ARCH__)
    if (option.t > 0.0) {  // on the CPU, four scenarios at a time where SLEEF and AVX2 are at hand
      black_formula_row(option.is_call, option.strike, option.discount, base, row, v.count,
                        [&](std::int32_t b, double& f, double& sd) {
                          f = option.forward_at(v.spot_mult[b * v.n_und + u]);
                          sd = option.std_dev_at(v.dvol[b * v.n_und + u]);
                        });
      return;
    }
#endif
    for (std::int32_t b = 0; b < v.count; ++b)
      row[b] = option(v.spot_mult[b * v.n_und + u], v.dvol[b * v.n_und + u]) - base;
  }
};

// The vault's PnL per underlying: Σ_i net_qty_i · dv[i][b] over u's instruments, in
// instrument order, for scenarios [16k, 16k + 16): rows read in 128-byte runs.
inline constexpr std::int32_t kVaultScenarioBlock = 16;
struct VaultByUnderlying {
  StressView v;
  VR_HD void operator()(std::int64_t k) const {
    const std::int32_t b0 = static_cast<std::int32_t>(k) * kVaultScenarioBlock;
    const std::int32_t b1 = b0 + kVaultScenarioBlock < v.count ? b0 + kVaultScenarioBlock : v.count;
    for (std::int32_t b = b0; b < b1; ++b)
      for (std::int32_t u = 0; u < v.n_und; ++u) v.vault_und[b * v.n_und + u] = 0.0;
    for (std::int64_t i = 0; i < v.n_inst; ++i) {
      const double q = v.net_qty[i];
      const std::int32_t u = v.inst_und[i];
      const double* row = v.dv + i * v.batch;
      for (std::int32_t b = b0; b < b1; ++b) v.vault_und[b * v.n_und + u] += q * row[b];
    }
  }
};

// Inserts x into the min-heap h of size n (< cap) or, when full, replaces the
// smallest kept value if x is larger.
VR_HD_INLINE void tail_push(double* h, std::int64_t n, std::int32_t cap, double x) {
  if (n < cap) {
    std::int64_t k = n;
    while (k > 0) {
      const std::int64_t parent = (k - 1) / 2;
      if (!(x < h[parent])) break;
      h[k] = h[parent];
      k = parent;
    }
    h[k] = x;
    return;
  }
  if (!(x > h[0])) return;
  std::int64_t k = 0;
  for (;;) {
    const std::int64_t l = 2 * k + 1, r = l + 1;
    std::int64_t m = k;
    double hm = x;
    if (l < cap && h[l] < hm) m = l, hm = h[l];
    if (r < cap && h[r] < hm) m = r, hm = h[r];
    if (m == k) break;
    h[k] = h[m];
    k = m;
  }
  h[k] = x;
}

// One chunk of accounts, in account order: each account's PnL under every scenario
// of the batch (positions outer, scenarios inner, so the inner loop is a contiguous
// multiply-add), its tail, worst scenario and insolvency count; then, while the row
// is still in cache, its share of the chunk's bad debt and insolvent count.
// `Path` only tells apart the copies built for different instruction sets from
// this one source (0: the default build, CUDA included; 1: kernels/stress_avx2.cpp).
template <int Path>
struct AccountChunkOf {
  StressView v;
  VR_HD void operator()(std::int64_t c) const {
    double* bad = v.part_bad_debt + c * v.batch;
    std::int64_t* ins = v.part_insolvent + c * v.batch;
    for (std::int32_t b = 0; b < v.count; ++b) bad[b] = 0.0, ins[b] = 0;
    const std::int64_t a1 = (c + 1) * v.chunk < v.n_accounts ? (c + 1) * v.chunk : v.n_accounts;
    for (std::int64_t a = c * v.chunk; a < a1; ++a) account(a, bad, ins);
  }

  VR_HD void account(std::int64_t a, double* __restrict__ bad, std::int64_t* __restrict__ ins) const {
#if !defined(__CUDA_ARCH__)
    // On the CPU, unless the PnL matrix is wanted (named scenarios), the row lives on
    // the stack: it stays in L1, and the matrix is never written back to memory.
    double local[kStressMaxBatch];
    double* __restrict__ row = v.pnl ? v.pnl + a * v.batch : local;
#else
    double* __restrict__ row = v.pnl + a * v.batch;
#endif
    const std::int32_t n = v.count;
#if !defined(__CUDA_ARCH__) && defined(__GNUC__)
    // The account's tail (800 bytes at 99% of 10,000) was last touched a batch ago and
    // is out of cache by now: ask for it here, so that it streams in while the
    // positions are summed, instead of stalling each step of the sift-downs below.
    {
      const char* t = reinterpret_cast<const char*>(v.tail + a * v.tail_m);
      for (std::int64_t k = 0; k < static_cast<std::int64_t>(v.tail_m) * 8; k += 64) __builtin_prefetch(t + k, 1);
    }
#endif
    for (std::int32_t b = 0; b < n; ++b) row[b] = 0.0;
    const std::int64_t p1 = v.acct_pos_begin[a + 1];
    for (std::int64_t p = v.acct_pos_begin[a]; p < p1; ++p) {
#if !defined(__CUDA_ARCH__) && defined(__GNUC__)
      // The next position's row sits at a random place: ask for it now, so that it
      // streams in while this one is summed (the loop otherwise waits on each row).
      if (p + 1 < v.n_positions) {
        const char* next = reinterpret_cast<const char*>(v.dv + static_cast<std::int64_t>(v.pos_inst[p + 1]) * v.batch);
        for (std::int32_t k = 0; k < n * 8; k += 64) __builtin_prefetch(next + k);
      }
#endif
      stress_axpy(row, v.dv + static_cast<std::int64_t>(v.pos_inst[p]) * v.batch, v.pos_qty[p], n);
    }
    // Each loop below is branch-free per scenario, so that it vectorises; the
    // scenario-by-scenario work runs only where a loss may enter the tail or set a
    // new worst. Comparisons only: the values are those of a plain loop, bit for bit.
    const double equity = v.equity[a];
    std::int64_t insolvent = 0;
    for (std::int32_t b = 0; b < n; ++b) {
      const double shortfall = -(equity + row[b]);  // > 0 exactly when equity + row < 0
      bad[b] += shortfall > 0.0 ? shortfall : 0.0;
      const std::int64_t under = shortfall > 0.0;
      ins[b] += under;
      insolvent += under;
    }
    v.insolvent[a] += insolvent;
    double* tail = v.tail + a * v.tail_m;
    std::int32_t b = 0;
    for (; b < n && v.inserted + b < v.tail_m; ++b) tail_push(tail, v.inserted + b, v.tail_m, -row[b]);  // filling
    // Full: only a loss above the tail's smallest enters, and few do. Eight at a time
    // against the smallest as it stands (it only grows), one by one where one may.
    for (; b < n; b += 8) {
      const std::int32_t e = b + 8 < n ? b + 8 : n;
      const double smallest = tail[0];
      int may = 0;
      for (std::int32_t k = b; k < e; ++k) may |= -row[k] > smallest;
      if (!may) continue;
      for (std::int32_t k = b; k < e; ++k)
        if (-row[k] > tail[0]) tail_push(tail, v.inserted + k, v.tail_m, -row[k]);
    }
    // The worst loss, strictly greater: the first scenario wins a tie.
    double top = v.worst_loss[a];
    for (std::int32_t k = 0; k < n; ++k) top = -row[k] > top ? -row[k] : top;
    if (top > v.worst_loss[a]) {
      std::int32_t k = 0;
      while (!(-row[k] == top)) ++k;
      v.worst_loss[a] = top;
      v.worst_index[a] = v.first + k;
    }
  }
};

using AccountChunk = AccountChunkOf<0>;

// The same chunks on the CPU's four-lane path where it is in use (the loops above
// vectorise four wide there; the sums round as here: no fused multiply-adds).
void account_chunks_avx2(const StressView& v, std::int64_t c0, std::int64_t c1);

// Monte Carlo (SPEC §8): path b of the batch from its 2U normals (ε then η):
// Z = L·ε, s_u = exp(−σ²h/2 + σ√h Z_u), dv_u = vov_u σ_u √h (ρ Z_u + √(1−ρ²) η_u).
struct McScenario {
  const double* normals;   // [b][2U]
  const double* cholesky;  // U×U, lower, row-major
  const double* sigma;     // per underlying
  const double* vol_of_vol;
  double rho, horizon;
  std::int32_t n_und;
  double* spot_mult;  // [b][u]
  double* dvol;
  VR_HD void operator()(std::int64_t b) const {
    const double* eps = normals + b * 2 * n_und;
    const double* eta = eps + n_und;
    for (std::int32_t u = 0; u < n_und; ++u) {
      double z = 0.0;
      for (std::int32_t k = 0; k <= u; ++k) z += cholesky[u * n_und + k] * eps[k];
      spot_mult[b * n_und + u] = mc_spot_multiplier(sigma[u], horizon, z);
      dvol[b * n_und + u] = mc_vol_shift(sigma[u], vol_of_vol[u], horizon, rho, z, eta[u]);
    }
  }
};

}  // namespace vaultrisk::detail
