// Batch stress (SPEC §8): the orchestration around the stress backends.
#include "kernels/stress.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.hpp"
#include "kernels/stress_backend.hpp"
#include "kernels/stress_functors.hpp"  // kStressMaxBatch
#include "pricing/black76.hpp"
#include "pricing/svi.hpp"

namespace vaultrisk {

namespace {

constexpr double kSecondsPerDay = 86400.0;
// Working memory of one batch (the PnL matrix and the instrument rows), bytes.
constexpr double kBatchBudget = 256.0 * 1024 * 1024;

struct Largest {
  std::vector<std::int64_t> index;  // worst first; ties: lower scenario first
  double var = 0, es = 0;
};

// The m largest of `x` (ties broken by index) with their m-th value and mean.
Largest largest(const std::vector<double>& x, std::int32_t m) {
  Largest out;
  out.index.resize(x.size());
  std::iota(out.index.begin(), out.index.end(), std::int64_t{0});
  const auto by_value = [&](std::int64_t a, std::int64_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); };
  std::partial_sort(out.index.begin(), out.index.begin() + m, out.index.end(), by_value);
  out.index.resize(static_cast<std::size_t>(m));
  double sum = 0;
  for (std::int64_t i : out.index) sum += x[i];
  out.var = x[out.index.back()];
  out.es = sum / m;
  return out;
}

// Accounts [a0, a1) (positions grouped by account, file order within each); the
// vault's net positions always over the whole book.
detail::StressLayout make_layout(const Book& book, const Market& market, const Engine& engine, double horizon_days,
                                 std::int64_t a0, std::int64_t a1) {
  detail::StressLayout l;
  const InstrumentTable inst = engine.instruments();
  const std::size_t n_inst = book.instrument_count(), n_acc = static_cast<std::size_t>(a1 - a0);
  std::vector<double> und_time;
  for (const std::string& u : book.underlyings) {
    const UnderlyingMarket& m = market.underlyings.at(u);
    l.und_spot.push_back(m.spot);
    l.und_rate.push_back(m.rate);
    und_time.push_back(m.time);
  }
  l.inst_und = book.underlying;
  l.inst_kind.resize(n_inst);
  l.inst_call = book.is_call;
  l.inst_strike = book.strike;
  l.inst_t.resize(n_inst);
  l.inst_price = inst.price;
  l.inst_vol = inst.vol;
  l.net_qty.assign(n_inst, 0.0);
  for (std::size_t i = 0; i < n_inst; ++i) {
    l.inst_kind[i] = static_cast<std::uint8_t>(book.kind[i]);
    l.inst_t[i] = book.kind[i] == InstrumentKind::option ? year_fraction(book.expiry[i], und_time[book.underlying[i]]) : 0.0;
  }
  // Positions grouped by account, file order within each (a stable counting sort).
  l.acct_pos_begin.assign(n_acc + 1, 0);
  const auto in_range = [&](std::int32_t a) { return a >= a0 && a < a1; };
  for (std::int32_t a : book.pos_account)
    if (in_range(a)) ++l.acct_pos_begin[a - a0 + 1];
  for (std::size_t a = 0; a < n_acc; ++a) l.acct_pos_begin[a + 1] += l.acct_pos_begin[a];
  std::vector<std::int64_t> fill(l.acct_pos_begin.begin(), l.acct_pos_begin.end() - 1);
  l.pos_inst.resize(static_cast<std::size_t>(l.acct_pos_begin.back()));
  l.pos_qty.resize(l.pos_inst.size());
  for (std::size_t p = 0; p < book.position_count(); ++p) {
    l.net_qty[book.pos_instrument[p]] += book.pos_quantity[p];
    if (!in_range(book.pos_account[p])) continue;
    const std::int64_t k = fill[book.pos_account[p] - a0]++;
    l.pos_inst[k] = book.pos_instrument[p];
    l.pos_qty[k] = book.pos_quantity[p];
  }
  const std::vector<double> equity = engine.accounts().equity;
  l.equity.assign(equity.begin() + a0, equity.begin() + a1);
  l.horizon = horizon_days / 365.0;
  return l;
}

Market shocked_market(const Book& book, const Market& market, const ScenarioTable& t, std::int64_t i,
                      double horizon_days) {
  Market m = market;
  m.time += horizon_days * kSecondsPerDay;
  for (std::size_t u = 0; u < book.underlyings.size(); ++u) {
    UnderlyingMarket& um = m.underlyings.at(book.underlyings[u]);
    um.spot *= t.spot_mult[i * book.underlyings.size() + u];
    um.time += horizon_days * kSecondsPerDay;
  }
  return m;
}

}  // namespace

std::int32_t tail_count(double confidence, std::int64_t n) {
  const double m = std::ceil((1.0 - confidence) * static_cast<double>(n) - 1e-9);
  return static_cast<std::int32_t>(std::max(1.0, std::min(m, static_cast<double>(n))));
}

double atm_vol(const UnderlyingMarket& m, const std::string& where) {
  const double target = m.time + 30 * kSecondsPerDay;
  const ExpirySlice* best = nullptr;
  for (const ExpirySlice& s : m.expiries) {
    if (!(s.expiry > m.time)) continue;
    const double d = std::fabs(s.expiry - target);
    if (!best || d < std::fabs(best->expiry - target) || (d == std::fabs(best->expiry - target) && s.expiry < best->expiry))
      best = &s;
  }
  if (!best)
    throw input_error(where + ": no unexpired SVI slice to take today's ATM vol from (give the model's \"vol\")");
  const double t = year_fraction(best->expiry, m.time);
  const double forward = m.spot * std::exp(m.rate * t);
  const double vol = svi_vol(best->svi, forward, forward, t);
  if (!(vol > 0.0)) throw input_error(where + ": the ATM total variance of expiry " + std::to_string(best->expiry) + " is not positive");
  return vol;
}

std::vector<double> atm_vols(const std::vector<std::string>& underlyings, const Market& market, bool required) {
  std::vector<double> sigma;
  for (const std::string& u : underlyings) {
    try {
      sigma.push_back(atm_vol(market.underlyings.at(u), "market: underlyings." + u));
    } catch (const input_error&) {
      if (required) throw;
      sigma.push_back(NAN);
    }
  }
  return sigma;
}

std::vector<double> cholesky(const std::vector<double>& c, std::int32_t n) {
  std::vector<double> l(static_cast<std::size_t>(n) * n, 0.0);
  for (std::int32_t i = 0; i < n; ++i)
    for (std::int32_t j = 0; j <= i; ++j) {
      double s = c[i * n + j];
      for (std::int32_t k = 0; k < j; ++k) s -= l[i * n + k] * l[j * n + k];
      if (i == j) {
        if (!(s > 1e-12)) throw input_error("the correlation matrix is not positive definite");
        l[i * n + i] = std::sqrt(s);
      } else {
        l[i * n + j] = s / l[j * n + j];
      }
    }
  return l;
}

StressResult run_stress_accounts(const Book& book, const Market& market, const Methodology& methodology,
                                 const StressSpec& spec, Device device, std::int64_t a0, std::int64_t a1,
                                 const StressProgress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::int64_t n = spec.scenario_count();
  if (n <= 0) throw input_error("no scenarios to run");
  if (!(spec.confidence > 0.0 && spec.confidence < 1.0)) throw input_error("--confidence must be in (0, 1)");
  VR_EXPECTS(0 <= a0 && a0 <= a1 && a1 <= static_cast<std::int64_t>(book.account_count()), "an account range of the book");
  const auto n_und = static_cast<std::int32_t>(book.underlyings.size());
  const auto n_acc = static_cast<std::size_t>(a1 - a0);

  Engine engine(book, methodology, device);
  engine.revalue(market);
  StressResult r;
  r.underlyings = book.underlyings;
  r.scenarios = n;
  r.tail = tail_count(spec.confidence, n);
  const std::vector<std::uint8_t> all_status = engine.statuses();
  r.status.assign(all_status.begin() + a0, all_status.begin() + a1);
  r.account_begin = a0;
  const detail::StressLayout layout = make_layout(book, market, engine, spec.horizon_days, a0, a1);
  r.equity = layout.equity;

  const bool gpu = engine.on_gpu();
  std::unique_ptr<detail::StressBackend> backend = gpu ? detail::make_cuda_stress_backend() : detail::make_omp_stress_backend();
  r.device = backend->name();
  // Bytes per scenario of a batch: PnL rows, instrument rows, chunk partials (8
  // accounts a chunk at the least) and the scenario columns.
  const double per_scenario = 8.0 * (static_cast<double>(n_acc) + static_cast<double>(book.instrument_count()) +
                                     static_cast<double>(n_acc) / 8.0 * 2 + 4.0 * n_und);
  const auto wide = static_cast<std::int32_t>(
      std::clamp<double>(std::floor(kBatchBudget / per_scenario), 1.0, std::min<double>(detail::kStressMaxBatch, static_cast<double>(n))));
  // On the CPU every position reads its instrument's scenario row in random order:
  // a batch whose rows total about 4 MiB keeps them in cache. At 100k accounts
  // (3,000 instruments) batches of 64/128/256/512/1000 took 1.35/1.09/1.12/1.29/2.26 s
  // for 1,000 paths; smaller ones pay the per-position loop overhead instead.
  std::int32_t batch = wide;
  if (!gpu) {
    const double fit = std::floor(4.0 * 1024.0 * 1024.0 / (8.0 * std::max<double>(1.0, static_cast<double>(book.instrument_count()))));
    batch = static_cast<std::int32_t>(std::max(64.0, std::min(static_cast<double>(wide), fit)));
    batch = static_cast<std::int32_t>(std::min<std::int64_t>(batch, n));
  }
  backend->load(layout, batch, r.tail, spec.source == StressSource::named);

  detail::McModel model;
  if (spec.source == StressSource::monte_carlo) {
    const MonteCarloSpec& mc = spec.monte_carlo;
    model.cholesky = cholesky(mc.correlation, n_und);
    model.sigma = mc.sigma;
    model.vol_of_vol = mc.vol_of_vol;
    model.rho = mc.spot_vol_correlation;
    model.seed = mc.seed;
  }
  const bool named = spec.source == StressSource::named;
  r.vault_pnl.resize(n);
  r.bad_debt.resize(n);
  r.insolvent.resize(n);
  r.vault_und.resize(static_cast<std::size_t>(n) * n_und);
  r.spot_mult.resize(static_cast<std::size_t>(n) * n_und);
  r.dvol.resize(static_cast<std::size_t>(n) * n_und);
  if (named) r.named_pnl.resize(static_cast<std::size_t>(n) * n_acc);

  detail::BatchTotals totals;
  std::vector<double> sm, dv;
  for (std::int64_t first = 0; first < n; first += batch) {
    const auto count = static_cast<std::int32_t>(std::min<std::int64_t>(batch, n - first));
    if (spec.source == StressSource::monte_carlo) {
      backend->monte_carlo(model, first, count);
    } else {
      const auto lo = static_cast<std::ptrdiff_t>(first * n_und), hi = static_cast<std::ptrdiff_t>((first + count) * n_und);
      sm.assign(spec.table.spot_mult.begin() + lo, spec.table.spot_mult.begin() + hi);
      dv.assign(spec.table.dvol.begin() + lo, spec.table.dvol.begin() + hi);
      backend->set_scenarios(sm, dv, count);
    }
    backend->run(first, first);
    backend->download(totals, named);
    for (std::int32_t b = 0; b < count; ++b) {
      const std::int64_t i = first + b;
      double vault = 0;
      for (std::int32_t u = 0; u < n_und; ++u) {
        const double x = totals.vault_und[static_cast<std::size_t>(b) * n_und + u];
        r.vault_und[static_cast<std::size_t>(i) * n_und + u] = x;
        r.spot_mult[static_cast<std::size_t>(i) * n_und + u] = totals.spot_mult[static_cast<std::size_t>(b) * n_und + u];
        r.dvol[static_cast<std::size_t>(i) * n_und + u] = totals.dvol[static_cast<std::size_t>(b) * n_und + u];
        vault += x;
      }
      r.vault_pnl[i] = vault;
      r.bad_debt[i] = totals.bad_debt[b];
      r.insolvent[i] = totals.insolvent[b];
      if (named)
        for (std::size_t a = 0; a < n_acc; ++a)
          r.named_pnl[a * n + i] = totals.pnl[a * static_cast<std::size_t>(batch) + b];
    }
    if (progress) progress(first + count, n);
  }

  // Per account: the tail sorted worst first, summed in that order.
  detail::TailState tails;
  backend->download(tails);
  r.var.resize(n_acc);
  r.es.resize(n_acc);
  r.worst_pnl.resize(n_acc);
  r.worst_scenario.resize(n_acc);
  r.insolvent_scenarios = tails.insolvent;
  const std::int32_t m = r.tail;
#pragma omp parallel for schedule(static)
  for (std::int64_t a = 0; a < static_cast<std::int64_t>(n_acc); ++a) {
    double* t = tails.tail.data() + a * m;
    std::sort(t, t + m, [](double x, double y) { return x > y; });
    double sum = 0;
    for (std::int32_t k = 0; k < m; ++k) sum += t[k];
    r.var[a] = t[m - 1];
    r.es[a] = sum / m;
    const double worst = tails.worst_loss[a];
    r.worst_scenario[a] = worst > 0.0 ? tails.worst_index[a] : -1;
    r.worst_pnl[a] = -worst;
  }

  // Named scenarios: the §4 margin at each shocked market, each option's vol fixed at σ'.
  if (named) {
    r.named_status.resize(static_cast<std::size_t>(n) * n_acc);
    r.liquidatable.assign(n, 0);
    std::vector<double> vols(book.instrument_count(), 0.0);
    for (std::int64_t i = 0; i < n; ++i) {
      for (std::size_t k = 0; k < book.instrument_count(); ++k) {
        const double d = spec.table.dvol[static_cast<std::size_t>(i) * n_und + book.underlying[k]];
        vols[k] = std::max(0.0, layout.inst_vol[k] + d);
      }
      engine.revalue(shocked_market(book, market, spec.table, i, spec.horizon_days), vols);
      const std::vector<std::uint8_t> st = engine.statuses();
      for (std::size_t a = 0; a < n_acc; ++a) {
        r.named_status[a * n + i] = st[a0 + a];
        r.liquidatable[i] += st[a0 + a] == static_cast<std::uint8_t>(AccountStatus::liquidatable) ? 1 : 0;
      }
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

void finish_stress(StressResult& r) {
  const std::int64_t n = r.scenarios;
  const std::int32_t m = r.tail;
  const auto n_und = static_cast<std::int32_t>(r.underlyings.size());
  // The vault: VaR/ES of its loss, bad debt, and each underlying's share of the ES.
  std::vector<double> loss(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) loss[i] = -r.vault_pnl[i];
  const Largest vault = largest(loss, m);
  r.vault_var = vault.var;
  r.vault_es = vault.es;
  r.vault_tail = vault.index;
  r.contributions.assign(n_und, 0.0);
  for (std::int32_t u = 0; u < n_und; ++u) {
    double s = 0;
    for (std::int64_t i : vault.index) s -= r.vault_und[static_cast<std::size_t>(i) * n_und + u];
    r.contributions[u] = s / m;
  }
  const Largest bad = largest(r.bad_debt, m);
  r.bad_debt_var = bad.var;
  r.bad_debt_es = bad.es;
  double bad_sum = 0;
  for (double x : r.bad_debt) bad_sum += x;
  r.bad_debt_mean = bad_sum / static_cast<double>(n);

}

StressResult merge_stress(std::vector<StressResult> parts) {
  VR_EXPECTS(!parts.empty(), "parts to merge");
  std::sort(parts.begin(), parts.end(), [](const StressResult& x, const StressResult& y) { return x.account_begin < y.account_begin; });
  StressResult r = std::move(parts.front());
  const auto n = static_cast<std::size_t>(r.scenarios);
  // Per scenario: the groups' sums added in account order, as one process adds them.
  // The first part's sums already started from zero (ThrustStress::download).
  const bool named = !r.named_status.empty();
  std::vector<double> named_pnl;
  std::vector<std::uint8_t> named_status;
  const auto take_named = [&](const StressResult& p) {
    named_pnl.insert(named_pnl.end(), p.named_pnl.begin(), p.named_pnl.end());
    named_status.insert(named_status.end(), p.named_status.begin(), p.named_status.end());
  };
  if (named) take_named(r);
  double seconds = r.seconds;
  for (std::size_t k = 1; k < parts.size(); ++k) {
    const StressResult& p = parts[k];
    VR_EXPECTS(p.account_begin == r.account_begin + static_cast<std::int64_t>(r.equity.size()), "contiguous account ranges");
    VR_EXPECTS(static_cast<std::size_t>(p.scenarios) == n, "parts of one run");
    for (std::size_t i = 0; i < n; ++i) {
      r.bad_debt[i] += p.bad_debt[i];
      r.insolvent[i] += p.insolvent[i];
      if (named) r.liquidatable[i] += p.liquidatable[i];
    }
    const auto append = [](auto& into, const auto& from) { into.insert(into.end(), from.begin(), from.end()); };
    append(r.equity, p.equity);
    append(r.var, p.var);
    append(r.es, p.es);
    append(r.worst_pnl, p.worst_pnl);
    append(r.worst_scenario, p.worst_scenario);
    append(r.insolvent_scenarios, p.insolvent_scenarios);
    append(r.status, p.status);
    if (named) take_named(p);
    seconds += p.seconds;
  }
  if (named) r.named_pnl = std::move(named_pnl), r.named_status = std::move(named_status);
  r.seconds = seconds;
  finish_stress(r);
  return r;
}

StressResult run_stress(const Book& book, const Market& market, const Methodology& methodology, const StressSpec& spec,
                        Device device, const StressProgress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  StressResult r = run_stress_accounts(book, market, methodology, spec, device, 0,
                                       static_cast<std::int64_t>(book.account_count()), progress);
  finish_stress(r);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace vaultrisk
