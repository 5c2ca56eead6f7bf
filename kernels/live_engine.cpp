// LiveEngine: a full layout (main) and a small one of the dirty accounts (overlay),
// merged by a full layout built in the background. See live_engine.hpp.
#include "kernels/live_engine.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <thread>

#include <omp.h>

#include "core/error.hpp"

namespace vaultrisk {

namespace {
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

template <class T>
std::int32_t rank_of(const std::vector<T>& sorted, T value) {  // -1 when absent
  const auto it = std::lower_bound(sorted.begin(), sorted.end(), value);
  return it != sorted.end() && *it == value ? static_cast<std::int32_t>(it - sorted.begin()) : -1;
}
}  // namespace

// The dirty accounts laid out on their own: an engine over a book of just them, their
// positions (in book order) and the instruments and underlyings those use.
struct LiveEngine::Overlay {
  std::unique_ptr<Engine> engine;
  std::vector<std::int32_t> account;     // overlay -> book account, ascending
  std::vector<std::int64_t> position;    // overlay -> book position, ascending
  std::vector<std::int32_t> instrument;  // overlay -> book instrument, ascending
};

// A full layout of a snapshot of the book, built off the caller's thread.
struct LiveEngine::MergeJob {
  Book book;  // freed once laid out
  Market market;
  std::size_t accounts = 0, instruments = 0, positions = 0;
  std::unique_ptr<Engine> engine;
  std::exception_ptr error;
  std::atomic<bool> done{false};
  std::thread thread;
  Clock::time_point started = Clock::now();
};

LiveEngine::LiveEngine(const Book& book, const Methodology& methodology, Device device, const Market& market,
                       LiveEngineOptions options)
    : methodology_(methodology), device_(device), options_(options) {
  main_ = std::make_unique<Engine>(book, methodology_, device_);
  main_->revalue(market);
  underlyings_ = book.underlyings;
  main_accounts_ = book.account_count();
  main_instruments_ = book.instrument_count();
  market_.insert(market.underlyings.begin(), market.underlyings.end());
  dirty_.assign(book.account_count(), 0);
  reported_.assign(book.account_count(), 0);
}

LiveEngine::~LiveEngine() {
  if (job_ && job_->thread.joinable()) job_->thread.join();
}

std::int32_t LiveEngine::und_index(const std::string& name) const {
  const std::int32_t u = rank_of(underlyings_, name);
  VR_EXPECTS(u >= 0, "LiveEngine: an underlying of a layout is in the book");
  return u;
}

void LiveEngine::mark_dirty(std::int32_t a) {
  if (dirty_[static_cast<std::size_t>(a)]) return;
  if (dirty_list_.empty()) dirty_since_ = Clock::now();
  dirty_[static_cast<std::size_t>(a)] = 1;
  dirty_list_.insert(std::upper_bound(dirty_list_.begin(), dirty_list_.end(), a), a);
}

std::unique_ptr<LiveEngine::Overlay> LiveEngine::build_overlay(const Book& book, const std::vector<std::int32_t>& dirty) const {
  if (dirty.empty()) return nullptr;
  auto o = std::make_unique<Overlay>();
  o->account = dirty;
  std::vector<std::int32_t> sub_account(book.account_count(), -1);
  for (std::size_t k = 0; k < dirty.size(); ++k) sub_account[static_cast<std::size_t>(dirty[k])] = static_cast<std::int32_t>(k);
  // One pass over the book's positions, a test each, in parallel runs kept in order
  // (10M positions: the pass is the overlay's main cost).
  const auto n_pos = static_cast<std::int64_t>(book.position_count());
  std::vector<std::vector<std::int64_t>> runs(static_cast<std::size_t>(omp_get_max_threads()));
#pragma omp parallel num_threads(static_cast<int>(runs.size()))
  {
    const auto t = static_cast<std::int64_t>(omp_get_thread_num()), nt = static_cast<std::int64_t>(omp_get_num_threads());
    std::vector<std::int64_t>& run = runs[static_cast<std::size_t>(t)];
    for (std::int64_t p = n_pos * t / nt, end = n_pos * (t + 1) / nt; p < end; ++p)
      if (sub_account[static_cast<std::size_t>(book.pos_account[static_cast<std::size_t>(p)])] >= 0) run.push_back(p);
  }
  for (const auto& run : runs) o->position.insert(o->position.end(), run.begin(), run.end());
  std::vector<std::int32_t> sub_inst(book.instrument_count(), -1);
  for (const std::int64_t p : o->position) sub_inst[static_cast<std::size_t>(book.pos_instrument[static_cast<std::size_t>(p)])] = 0;
  std::vector<std::int32_t> sub_und(book.underlyings.size(), -1);
  for (std::size_t i = 0; i < sub_inst.size(); ++i)
    if (sub_inst[i] == 0) sub_und[static_cast<std::size_t>(book.underlying[i])] = 0;
  Book s;
  for (std::size_t u = 0; u < sub_und.size(); ++u)
    if (sub_und[u] == 0) {
      sub_und[u] = static_cast<std::int32_t>(s.underlyings.size());
      s.underlyings.push_back(book.underlyings[u]);  // ascending: still sorted
    }
  for (std::size_t i = 0; i < sub_inst.size(); ++i)
    if (sub_inst[i] == 0) {
      sub_inst[i] = static_cast<std::int32_t>(o->instrument.size());
      o->instrument.push_back(static_cast<std::int32_t>(i));
      s.instrument_id.push_back(book.instrument_id[i]);
      s.kind.push_back(book.kind[i]);
      s.underlying.push_back(sub_und[static_cast<std::size_t>(book.underlying[i])]);
      s.expiry.push_back(book.expiry[i]);
      s.strike.push_back(book.strike[i]);
      s.is_call.push_back(book.is_call[i]);
    }
  for (const std::int32_t a : dirty) {
    s.account_id.push_back(book.account_id[static_cast<std::size_t>(a)]);
    s.cash.push_back(book.cash[static_cast<std::size_t>(a)]);
  }
  for (const std::int64_t p64 : o->position) {
    const auto p = static_cast<std::size_t>(p64);
    s.pos_account.push_back(sub_account[static_cast<std::size_t>(book.pos_account[p])]);
    s.pos_instrument.push_back(sub_inst[static_cast<std::size_t>(book.pos_instrument[p])]);
    s.pos_quantity.push_back(book.pos_quantity[p]);
    s.pos_entry.push_back(book.pos_entry[p]);
  }
  Market m;
  for (const std::string& u : s.underlyings) {
    const auto it = market_.find(u);
    if (it == market_.end()) throw input_error("market: underlyings: '" + u + "' is missing (a held instrument needs it)");
    m.underlyings[u] = it->second;
  }
  o->engine = std::make_unique<Engine>(s, methodology_, device_);
  o->engine->revalue(m);
  std::vector<std::uint8_t> seen;
  for (const std::int32_t a : dirty) seen.push_back(reported_[static_cast<std::size_t>(a)]);
  o->engine->set_reported_statuses(seen);
  return o;
}

void LiveEngine::apply(const Book& book, const BookChanges& changes) {
  underlyings_ = book.underlyings;
  const std::size_t n = book.account_count();
  VR_EXPECTS(n >= dirty_.size(), "LiveEngine::apply(): accounts are never removed");
  const bool opened = n > dirty_.size();
  const std::size_t first_new = dirty_.size();
  dirty_.resize(n, 0);
  reported_.resize(n, 0);  // a new account: never evaluated, compared with healthy
  if (job_) since_.resize(n, 0);
  auto touch = [&](std::int32_t a) {
    if (job_ && !since_[static_cast<std::size_t>(a)]) {
      since_[static_cast<std::size_t>(a)] = 1;
      since_list_.push_back(a);
    }
  };
  for (std::size_t a = first_new; a < n; ++a) {
    mark_dirty(static_cast<std::int32_t>(a));
    touch(static_cast<std::int32_t>(a));
  }
  for (const std::int32_t a : changes.reshaped) {
    VR_EXPECTS(a >= 0 && static_cast<std::size_t>(a) < n, "LiveEngine::apply(): a reshaped account");
    mark_dirty(a);
    touch(a);
  }
  const bool relay_overlay = opened || !changes.reshaped.empty();
  // In place: a clean account's positions keep the indices main has for them.
  std::vector<Engine::PositionUpdate> main_pos;
  std::vector<CashPatch> main_cash;
  std::vector<std::int64_t> over_pos;
  std::vector<std::int32_t> over_acct;
  for (const std::int64_t p : changes.positions) {
    if (p < 0 || static_cast<std::size_t>(p) >= book.position_count()) continue;  // renumbered since: reshaped
    const auto pi = static_cast<std::size_t>(p);
    const std::int32_t a = book.pos_account[pi];
    touch(a);
    if (dirty_[static_cast<std::size_t>(a)]) {
      over_pos.push_back(p);
      over_acct.push_back(a);
    } else {
      main_pos.push_back(Engine::PositionUpdate{p, a, book.pos_quantity[pi], book.pos_entry[pi]});
      main_cash.push_back(CashPatch{a, book.cash[static_cast<std::size_t>(a)]});
    }
  }
  for (const std::int32_t a : changes.accounts) {
    VR_EXPECTS(a >= 0 && static_cast<std::size_t>(a) < n, "LiveEngine::apply(): an account");
    touch(a);
    if (dirty_[static_cast<std::size_t>(a)])
      over_acct.push_back(a);
    else
      main_cash.push_back(CashPatch{a, book.cash[static_cast<std::size_t>(a)]});
  }
  if (!main_cash.empty()) main_->update_in_place(main_pos, std::move(main_cash));
  if (relay_overlay) {
    overlay_ = build_overlay(book, dirty_list_);  // takes the dirty accounts' in-place changes too
    return;
  }
  if (over_acct.empty()) return;
  // No reshape since the overlay was laid out: its positions are where it put them.
  const Overlay& o = *overlay_;
  const auto sub_account = [&](std::int32_t a) {
    const std::int32_t k = rank_of(o.account, a);
    VR_EXPECTS(k >= 0, "LiveEngine::apply(): a dirty account is in the overlay");
    return k;
  };
  std::vector<Engine::PositionUpdate> sub_pos;
  std::vector<CashPatch> sub_cash;
  for (const std::int64_t p : over_pos) {
    const std::int32_t k = rank_of(o.position, p);
    VR_EXPECTS(k >= 0, "LiveEngine::apply(): a dirty account's position is in the overlay");
    const auto pi = static_cast<std::size_t>(p);
    sub_pos.push_back(Engine::PositionUpdate{k, sub_account(book.pos_account[pi]), book.pos_quantity[pi], book.pos_entry[pi]});
  }
  for (const std::int32_t a : over_acct) sub_cash.push_back(CashPatch{sub_account(a), book.cash[static_cast<std::size_t>(a)]});
  o.engine->update_in_place(sub_pos, std::move(sub_cash));
}

bool LiveEngine::update_underlying(const std::string& underlying, const UnderlyingMarket& market) {
  // (An engine is asked only about its own underlyings: one of accounts holding
  // nothing has none, and was never valued.)
  const bool in_overlay = overlay_ && rank_of(overlay_->engine->underlyings(), underlying) >= 0;
  const bool in_main = rank_of(main_->underlyings(), underlying) >= 0;
  bool held = false;
  if (in_overlay) held = overlay_->engine->update_underlying(underlying, market);  // throws: nothing changed
  try {
    if (in_main) held = main_->update_underlying(underlying, market) || held;
  } catch (...) {
    if (in_overlay) overlay_->engine->update_underlying(underlying, market_.at(underlying));  // back as it was
    throw;
  }
  market_[underlying] = market;
  if (job_ && std::find(ticked_since_.begin(), ticked_since_.end(), underlying) == ticked_since_.end())
    ticked_since_.push_back(underlying);
  return held;
}

void LiveEngine::set_reported_statuses(const std::vector<std::uint8_t>& status) {
  if (status.size() != reported_.size())
    throw std::invalid_argument("LiveEngine::set_reported_statuses: one status per account is needed");
  reported_ = status;
  main_->set_reported_statuses(std::vector<std::uint8_t>(status.begin(), status.begin() + static_cast<std::ptrdiff_t>(main_accounts_)));
  if (overlay_) {
    std::vector<std::uint8_t> seen;
    for (const std::int32_t a : overlay_->account) seen.push_back(status[static_cast<std::size_t>(a)]);
    overlay_->engine->set_reported_statuses(seen);
  }
}

std::vector<AccountChange> LiveEngine::take_status_changes() {
  std::vector<AccountChange> out = main_->take_status_changes();
  // Main's numbers for a dirty account are stale: only the overlay's count.
  out.erase(std::remove_if(out.begin(), out.end(), [&](const AccountChange& c) { return dirty_[static_cast<std::size_t>(c.account)] != 0; }),
            out.end());
  if (overlay_) {
    const std::size_t clean = out.size();
    for (AccountChange c : overlay_->engine->take_status_changes()) {
      c.account = overlay_->account[static_cast<std::size_t>(c.account)];
      out.push_back(c);
    }
    std::inplace_merge(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(clean), out.end(),
                       [](const AccountChange& x, const AccountChange& y) { return x.account < y.account; });
  }
  for (const AccountChange& c : out) reported_[static_cast<std::size_t>(c.account)] = c.status;
  return out;
}

std::vector<AccountChange> LiveEngine::accounts(const std::vector<std::int32_t>& ids) const {
  std::vector<std::int32_t> from_main, from_overlay;
  for (const std::int32_t a : ids) {
    if (a < 0 || static_cast<std::size_t>(a) >= dirty_.size())
      throw std::out_of_range("LiveEngine::accounts: no account " + std::to_string(a));
    if (dirty_[static_cast<std::size_t>(a)])
      from_overlay.push_back(rank_of(overlay_->account, a));
    else
      from_main.push_back(a);
  }
  const std::vector<AccountChange> m = from_main.empty() ? std::vector<AccountChange>{} : main_->accounts(from_main);
  const std::vector<AccountChange> o =
      from_overlay.empty() ? std::vector<AccountChange>{} : overlay_->engine->accounts(from_overlay);
  std::vector<AccountChange> out;
  std::size_t im = 0, io = 0;
  for (const std::int32_t a : ids) {
    if (dirty_[static_cast<std::size_t>(a)]) {
      out.push_back(o[io++]);
      out.back().account = a;
    } else {
      out.push_back(m[im++]);
    }
  }
  return out;
}

AccountTable LiveEngine::accounts() const {
  AccountTable t = main_->accounts();
  const std::size_t n = dirty_.size();
  for (auto* v : {&t.equity, &t.mm, &t.im, &t.mm_surplus, &t.im_surplus}) v->resize(n);
  t.status.resize(n);
  if (!overlay_) return t;
  const AccountTable o = overlay_->engine->accounts();
  for (std::size_t k = 0; k < overlay_->account.size(); ++k) {
    const auto a = static_cast<std::size_t>(overlay_->account[k]);
    t.equity[a] = o.equity[k];
    t.mm[a] = o.mm[k];
    t.im[a] = o.im[k];
    t.mm_surplus[a] = o.mm_surplus[k];
    t.im_surplus[a] = o.im_surplus[k];
    t.status[a] = o.status[k];
  }
  return t;
}

BlockResults LiveEngine::account_blocks(std::int32_t account) const {
  VR_EXPECTS(account >= 0 && static_cast<std::size_t>(account) < dirty_.size(), "LiveEngine::account_blocks(): an account");
  BlockResults b;
  const std::vector<std::string>* names = &main_->underlyings();
  if (dirty_[static_cast<std::size_t>(account)]) {
    b = overlay_->engine->account_blocks(rank_of(overlay_->account, account));
    names = &overlay_->engine->underlyings();
  } else {
    b = main_->account_blocks(account);
  }
  for (std::size_t k = 0; k < b.account.size(); ++k) {
    b.account[k] = account;
    b.underlying[k] = und_index((*names)[static_cast<std::size_t>(b.underlying[k])]);
  }
  return b;
}

std::vector<std::int32_t> LiveEngine::account_underlyings(std::int32_t account) const {
  VR_EXPECTS(account >= 0 && static_cast<std::size_t>(account) < dirty_.size(), "LiveEngine::account_underlyings(): an account");
  const bool dirty = dirty_[static_cast<std::size_t>(account)] != 0;
  std::vector<std::int32_t> u = dirty ? overlay_->engine->account_underlyings(rank_of(overlay_->account, account))
                                      : main_->account_underlyings(account);
  const std::vector<std::string>& names = dirty ? overlay_->engine->underlyings() : main_->underlyings();
  for (std::int32_t& x : u) x = und_index(names[static_cast<std::size_t>(x)]);
  return u;
}

std::vector<double> LiveEngine::scenario_row(std::int32_t instrument) const {
  if (instrument >= 0 && static_cast<std::size_t>(instrument) < main_instruments_) return main_->scenario_row(instrument);
  const std::int32_t k = overlay_ ? rank_of(overlay_->instrument, instrument) : -1;
  if (k < 0) throw std::out_of_range("LiveEngine::scenario_row: instrument " + std::to_string(instrument) + " is not held");
  return overlay_->engine->scenario_row(k);
}

std::int64_t LiveEngine::block_count() const {
  return main_->block_count() + (overlay_ ? overlay_->engine->block_count() : 0);
}

void LiveEngine::merge(const Book& book) {
  if (job_) return;
  auto fresh = std::make_unique<MergeJob>();  // kept only once its thread runs: a throw here leaves no job
  MergeJob& job = *fresh;
  job.book = book;
  for (const std::string& u : book.underlyings)
    if (auto it = market_.find(u); it != market_.end()) job.market.underlyings[u] = it->second;
  job.accounts = book.account_count();
  job.instruments = book.instrument_count();
  job.positions = book.position_count();
  auto run = [&job, methodology = &methodology_, device = device_] {
    try {
      auto e = std::make_unique<Engine>(job.book, *methodology, device);
      job.book = Book{};
      e->revalue(job.market);
      job.engine = std::move(e);
    } catch (...) {
      job.error = std::current_exception();
    }
    job.done = true;
  };
  since_.assign(book.account_count(), 0);
  since_list_.clear();
  ticked_since_.clear();
  if (options_.background)
    job.thread = std::thread([run, hook = options_.on_background_thread] {
      if (hook) hook();
      run();
    });
  else
    run();
  job_ = std::move(fresh);
}

std::optional<std::string> LiveEngine::poll(const Book& book) {
  if (job_ && job_->done) return finish_merge(book);
  if (job_ || dirty_list_.empty() || Clock::now() < retry_after_) return std::nullopt;
  const bool many = dirty_list_.size() >= options_.merge_accounts;
  const double age = seconds_since(dirty_since_);
  if (!many && age < options_.merge_after_s) return std::nullopt;
  char why[160];
  std::snprintf(why, sizeof why, "%zu accounts laid out apart (%zu positions), the oldest for %.1f s", dirty_list_.size(),
                overlay_ ? overlay_->position.size() : std::size_t{0}, age);
  merge(book);
  if (!options_.background) return finish_merge(book);
  return std::string("background layout started: ") + why;
}

std::optional<std::string> LiveEngine::finish_merge(const Book& book) {
  if (!job_) return std::nullopt;
  if (job_->thread.joinable()) job_->thread.join();
  const std::unique_ptr<MergeJob> job = std::move(job_);
  const double build_s = seconds_since(job->started);
  auto failed = [&](const std::string& why) {
    retry_after_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                                      std::max(1.0, std::min(options_.merge_after_s, 30.0))));
    return "background layout failed (the overlay keeps serving; tried again later): " + why;
  };
  if (job->error) try {
      std::rethrow_exception(job->error);
    } catch (const std::exception& e) {
      return failed(e.what());
    }
  try {
    Engine& e = *job->engine;
    for (const std::string& u : ticked_since_) e.update_underlying(u, market_.at(u));  // the ticks since the snapshot
    // Dirty from now on: what changed since the snapshot, and the accounts opened since.
    std::vector<std::int32_t> dirty = since_list_;
    for (std::size_t a = job->accounts; a < book.account_count(); ++a)
      if (a >= since_.size() || !since_[a]) dirty.push_back(static_cast<std::int32_t>(a));
    std::sort(dirty.begin(), dirty.end());
    std::unique_ptr<Overlay> overlay = build_overlay(book, dirty);
    e.set_reported_statuses(std::vector<std::uint8_t>(reported_.begin(), reported_.begin() + static_cast<std::ptrdiff_t>(job->accounts)));
    const std::size_t folded = dirty_list_.size();
    main_ = std::move(job->engine);
    main_accounts_ = job->accounts;
    main_instruments_ = job->instruments;
    overlay_ = std::move(overlay);
    dirty_.assign(book.account_count(), 0);
    for (const std::int32_t a : dirty) dirty_[static_cast<std::size_t>(a)] = 1;
    dirty_list_ = std::move(dirty);
    dirty_since_ = Clock::now();
    ++merges_;
    char msg[240];
    std::snprintf(msg, sizeof msg,
                  "background layout swapped in: %zu accounts, %zu positions laid out in %.0f ms; %zu dirty accounts "
                  "folded in, %zu changed meanwhile stay apart",
                  job->accounts, job->positions, build_s * 1e3, folded, dirty_list_.size());
    return std::string(msg);
  } catch (const std::exception& e) {
    return failed(e.what());
  }
}

LiveEngine::Stats LiveEngine::stats() const {
  Stats s;
  s.dirty_accounts = dirty_list_.size();
  s.overlay_positions = overlay_ ? overlay_->position.size() : 0;
  s.main_accounts = main_accounts_;
  s.merging = job_ != nullptr;
  s.merges = merges_;
  return s;
}

}  // namespace vaultrisk
