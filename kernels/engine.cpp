// Host side of the engine: layout preparation, market validation, backend dispatch.
#include "kernels/engine.hpp"

#include <utility>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <stdexcept>
#include <string>

#include "core/error.hpp"
#include "kernels/backend.hpp"
#include "kernels/detail/insertion_sort.hpp"
#include "pricing/black76.hpp"

namespace vaultrisk {

Device parse_device(std::string_view text) {
  if (text == "auto") return Device::automatic;
  if (text == "cpu") return Device::cpu;
  if (text == "gpu") return Device::gpu;
  throw input_error("--device: expected auto, cpu or gpu, got '" + std::string(text) + "'");
}

bool gpu_available() { return detail::cuda_device_count() > 0; }

namespace {

std::string fmt(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

// Why `m` cannot value an option of this expiry and strike; empty when it can
// (or when the option has expired and needs no smile). The one statement of the
// rule InstrumentInvalid applies on the device, for messages and host checks.
std::string option_market_problem(double expiry, double strike, const UnderlyingMarket& m) {
  const double t = year_fraction(expiry, m.time);
  if (!(t > 0.0)) return {};
  for (const ExpirySlice& s : m.expiries) {
    if (s.expiry != expiry) continue;
    const double forward = m.spot * std::exp(m.rate * t);  // as the engine computes it
    const double w = svi_total_variance(s.svi, std::log(strike / forward));
    if (w > 0.0 && std::isfinite(w)) return {};
    return "SVI total variance w = " + fmt(w) + " is not positive at strike " + fmt(strike);
  }
  return "no SVI slice for this expiry and the option has not expired";
}

Layout make_layout(const Book& book, const Methodology& methodology,
                   std::vector<std::int32_t>& inst_file_index) {
  Layout l;
  const auto n_und = static_cast<std::int32_t>(book.underlyings.size());
  const auto n_inst = static_cast<std::int64_t>(book.instrument_count());
  const auto n_acct = static_cast<std::int64_t>(book.account_count());
  const auto n_pos = static_cast<std::int64_t>(book.position_count());
  l.n_underlyings = n_und;

  // Instruments by (underlying, expiry); stable so ties keep file order.
  inst_file_index.resize(n_inst);
  std::iota(inst_file_index.begin(), inst_file_index.end(), 0);
  std::stable_sort(inst_file_index.begin(), inst_file_index.end(), [&](std::int32_t a, std::int32_t b) {
    if (book.underlying[a] != book.underlying[b]) return book.underlying[a] < book.underlying[b];
    return book.expiry[a] < book.expiry[b];
  });
  std::vector<std::int32_t> internal_of(n_inst);
  l.und_inst_begin.assign(n_und + 1, 0);
  l.und_slot_begin.assign(n_und + 1, 0);
  for (std::int64_t k = 0; k < n_inst; ++k) {
    const std::int32_t f = inst_file_index[k];
    internal_of[f] = static_cast<std::int32_t>(k);
    const std::int32_t u = book.underlying[f];
    VR_EXPECTS(u >= 0 && u < n_und, "instrument underlying index");
    l.inst_underlying.push_back(u);
    l.inst_kind.push_back(static_cast<std::uint8_t>(book.kind[f]));
    l.inst_call.push_back(book.is_call[f]);
    l.inst_expiry.push_back(book.expiry[f]);
    l.inst_strike.push_back(book.strike[f]);
    ++l.und_inst_begin[u + 1];
    if (book.kind[f] == InstrumentKind::option) {
      const bool new_slot = l.slot_expiry.empty() || l.und_slot_begin[u + 1] == 0 ||
                            l.slot_expiry.back() != book.expiry[f];
      if (new_slot) {
        l.slot_expiry.push_back(book.expiry[f]);
        ++l.und_slot_begin[u + 1];
      }
      l.inst_slot.push_back(static_cast<std::int32_t>(l.slot_expiry.size()) - 1);
    } else {
      l.inst_slot.push_back(-1);
    }
  }
  std::partial_sum(l.und_inst_begin.begin(), l.und_inst_begin.end(), l.und_inst_begin.begin());
  std::partial_sum(l.und_slot_begin.begin(), l.und_slot_begin.end(), l.und_slot_begin.begin());

  // Positions: counting sort by account, then by underlying inside each account.
  std::vector<std::int64_t> acct_pos_begin(n_acct + 1, 0);
  for (std::int64_t p = 0; p < n_pos; ++p) {
    VR_EXPECTS(book.pos_account[p] >= 0 && book.pos_account[p] < n_acct, "position account index");
    VR_EXPECTS(book.pos_instrument[p] >= 0 && book.pos_instrument[p] < n_inst, "position instrument index");
    ++acct_pos_begin[book.pos_account[p] + 1];
  }
  std::partial_sum(acct_pos_begin.begin(), acct_pos_begin.end(), acct_pos_begin.begin());
  std::vector<std::int64_t> order(n_pos), fill(acct_pos_begin.begin(), acct_pos_begin.end() - 1);
  for (std::int64_t p = 0; p < n_pos; ++p) order[fill[book.pos_account[p]]++] = p;
  auto und_of_pos = [&](std::int64_t p) { return book.underlying[book.pos_instrument[p]]; };
  for (std::int64_t a = 0; a < n_acct; ++a)
    insertion_sort(order.begin() + acct_pos_begin[a], order.begin() + acct_pos_begin[a + 1],
                   [&](std::int64_t x, std::int64_t y) { return und_of_pos(x) < und_of_pos(y); });

  VR_EXPECTS(n_pos < (std::int64_t{1} << 31), "position count fits int32");
  l.pos_slot.resize(n_pos);
  l.pos_inst.resize(n_pos);
  l.pos_qty.resize(n_pos);
  l.pos_entry.resize(n_pos);
  l.acct_block_begin.assign(n_acct + 1, 0);
  std::vector<std::int64_t> und_block_count(n_und + 1, 0);
  for (std::int64_t a = 0; a < n_acct; ++a) {
    std::int32_t prev_u = -1;
    for (std::int64_t k = acct_pos_begin[a]; k < acct_pos_begin[a + 1]; ++k) {
      const std::int64_t p = order[k];
      const std::int32_t u = und_of_pos(p);
      if (u != prev_u) {
        l.block_begin.push_back(k);
        l.block_account.push_back(static_cast<std::int32_t>(a));
        l.block_underlying.push_back(u);
        ++und_block_count[u + 1];
        prev_u = u;
      }
      l.pos_slot[p] = static_cast<std::int32_t>(k);
      l.pos_inst[k] = internal_of[book.pos_instrument[p]];
      l.pos_qty[k] = book.pos_quantity[p];
      l.pos_entry[k] = book.pos_entry[p];
    }
    l.acct_block_begin[a + 1] = static_cast<std::int64_t>(l.block_account.size());
  }
  l.block_begin.push_back(n_pos);
  VR_EXPECTS(l.n_blocks() < (std::int64_t{1} << 31), "block count fits int32");

  // Block and account id lists per underlying (accounts have one block per underlying).
  std::partial_sum(und_block_count.begin(), und_block_count.end(), und_block_count.begin());
  l.und_block_begin = und_block_count;
  l.und_account_begin = und_block_count;
  l.und_blocks.resize(l.n_blocks());
  l.und_accounts.resize(l.n_blocks());
  std::vector<std::int64_t> next(und_block_count.begin(), und_block_count.end() - 1);
  for (std::int64_t b = 0; b < l.n_blocks(); ++b) {
    const std::int64_t slot = next[l.block_underlying[b]]++;
    l.und_blocks[slot] = static_cast<std::int32_t>(b);
    l.und_accounts[slot] = l.block_account[b];
  }
  l.cash = book.cash;

  // Methodology per underlying, flattened.
  for (std::int32_t u = 0; u < n_und; ++u) {
    const UnderlyingMethodology& m = methodology.for_underlying(book.underlyings[u]);
    validate_methodology(m, "methodology for " + book.underlyings[u]);
    MarginParams mp{};
    mp.scen_begin = static_cast<std::int32_t>(l.scen_spot.size());
    mp.scen_count = static_cast<std::int32_t>(m.scenarios.size());
    mp.vol_shock = m.vol_shock;
    mp.mm_perp = m.mm_perp;
    mp.mm_short = m.mm_short;
    mp.im_perp = m.im_perp;
    mp.im_short = m.im_short;
    mp.low_confidence = m.low_confidence;
    mp.mm_scan = m.mm_scan;
    mp.im_scan = m.im_scan;
    for (const Scenario& s : m.scenarios) {
      l.scen_spot.push_back(s.spot);
      l.scen_damp.push_back(s.damp);
      l.scen_vol.push_back(static_cast<std::int8_t>(s.vol));
    }
    l.scen_stride = std::max(l.scen_stride, padded_scenario_count(mp.scen_count));
    l.margin.push_back(mp);
  }
  return l;
}

}  // namespace

void validate_market_for_option(const std::string& id, double expiry, double strike, const std::string& underlying,
                                const UnderlyingMarket& m) {
  const std::string problem = option_market_problem(expiry, strike, m);
  if (!problem.empty())
    throw input_error("market: underlyings." + underlying + ": instrument '" + id + "' (expiry " + fmt(expiry) +
                      "): " + problem);
}

void validate_market_for_book(const Book& book, const std::string& underlying, const UnderlyingMarket& m) {
  validate_underlying_market(m, "market: underlyings." + underlying);
  const auto it = std::find(book.underlyings.begin(), book.underlyings.end(), underlying);
  if (it == book.underlyings.end()) return;
  const auto u = static_cast<std::int32_t>(it - book.underlyings.begin());
  for (std::size_t i = 0; i < book.instrument_count(); ++i)
    if (book.underlying[i] == u && book.kind[i] == InstrumentKind::option)
      validate_market_for_option(book.instrument_id[i], book.expiry[i], book.strike[i], underlying, m);
}

Engine::Engine(const Book& book, const Methodology& methodology, Device device)
    : instrument_ids_(book.instrument_id), underlying_names_(book.underlyings) {
  VR_EXPECTS(std::is_sorted(book.underlyings.begin(), book.underlyings.end()), "sorted underlyings");
  validate_methodology(methodology.base, "methodology");
  layout_ = make_layout(book, methodology, inst_file_index_);
  inst_internal_.resize(inst_file_index_.size());
  for (std::size_t k = 0; k < inst_file_index_.size(); ++k) inst_internal_[inst_file_index_[k]] = static_cast<std::int32_t>(k);
  if (device == Device::gpu || (device == Device::automatic && gpu_available())) {
    backend_ = detail::make_cuda_backend();
    on_gpu_ = true;
  } else {
    backend_ = detail::make_omp_backend();
  }
  backend_->load(layout_);
  // The backend owns the positions now; keep only what explains errors and ranges.
  for (auto* v : {&layout_.pos_qty, &layout_.pos_entry}) std::vector<double>().swap(*v);
  std::vector<std::int32_t>().swap(layout_.pos_inst);
}

Engine::~Engine() = default;

std::string Engine::device_name() const { return backend_->name(); }

MarketParams Engine::build_params(const std::vector<UnderlyingMarket>& und) const {
  MarketParams p;
  p.slot_slice.assign(layout_.slot_expiry.size(), -1);
  for (std::int32_t u = 0; u < layout_.n_underlyings; ++u) {
    const UnderlyingMarket& m = und[u];
    p.und.push_back(UnderlyingState{m.spot, m.rate, m.confidence, m.time});
    const auto first = static_cast<std::int32_t>(p.slices.size());
    for (const ExpirySlice& s : m.expiries) p.slices.push_back(s.svi);
    for (std::int32_t s = layout_.und_slot_begin[u]; s < layout_.und_slot_begin[u + 1]; ++s)
      for (std::size_t e = 0; e < m.expiries.size(); ++e)
        if (m.expiries[e].expiry == layout_.slot_expiry[s]) p.slot_slice[s] = first + static_cast<std::int32_t>(e);
  }
  p.inst_vol = vol_override_;
  return p;
}

std::string Engine::explain_invalid(std::int64_t i, const std::vector<UnderlyingMarket>& und) const {
  const std::int32_t u = layout_.inst_underlying[i];
  return "market: underlyings." + underlying_names_[u] + ": instrument '" + instrument_ids_[inst_file_index_[i]] +
         "' (expiry " + fmt(layout_.inst_expiry[i]) + "): " +
         option_market_problem(layout_.inst_expiry[i], layout_.inst_strike[i], und[u]);
}

void Engine::apply(std::vector<UnderlyingMarket> next, std::int32_t only) {
  const std::int64_t i0 = only < 0 ? 0 : layout_.und_inst_begin[only];
  const std::int64_t i1 = only < 0 ? layout_.n_instruments() : layout_.und_inst_begin[only + 1];
  backend_->set_market(build_params(next));
  const std::int64_t bad = backend_->first_invalid(i0, i1);
  if (bad != i1) {
    const std::string why = explain_invalid(bad, next);
    if (!current_.empty()) backend_->set_market(build_params(current_));  // leave state untouched
    throw input_error(why);
  }
  scan_all_ = true;  // from here on any account may have moved (even if this throws)
  backend_->price(i0, i1);
  backend_->aggregate_blocks(only);
  backend_->aggregate_accounts(only);
  backend_->synchronize();
  current_ = std::move(next);
}

std::vector<UnderlyingMarket> Engine::market_for_book(const Market& market) const {
  std::vector<UnderlyingMarket> next;
  for (std::int32_t u = 0; u < layout_.n_underlyings; ++u) {
    const std::string& name = underlying_names_[u];
    auto it = market.underlyings.find(name);
    if (it == market.underlyings.end()) {
      const std::string needed_by = instrument_ids_[inst_file_index_[layout_.und_inst_begin[u]]];
      throw input_error("market: underlyings: '" + name + "' is missing (instrument '" + needed_by +
                        "' needs it)");
    }
    validate_underlying_market(it->second, "market: underlyings." + name);
    next.push_back(it->second);
  }
  return next;
}

void Engine::revalue(const Market& market) {
  std::vector<UnderlyingMarket> next = market_for_book(market);
  std::vector<double> previous = std::exchange(vol_override_, {});
  try {
    apply(std::move(next), -1);
  } catch (...) {
    vol_override_ = std::move(previous);
    throw;
  }
}

void Engine::revalue(const Market& market, const std::vector<double>& vol_by_instrument) {
  VR_EXPECTS(vol_by_instrument.size() == inst_file_index_.size(), "revalue(): one vol per instrument");
  std::vector<UnderlyingMarket> next = market_for_book(market);
  std::vector<double> previous = std::move(vol_override_);
  vol_override_.resize(inst_file_index_.size());
  for (std::size_t k = 0; k < inst_file_index_.size(); ++k) vol_override_[k] = vol_by_instrument[inst_file_index_[k]];
  try {
    apply(std::move(next), -1);
  } catch (...) {
    vol_override_ = std::move(previous);
    throw;
  }
}

bool Engine::update_underlying(const std::string& underlying, const UnderlyingMarket& market) {
  VR_EXPECTS(!current_.empty(), "update_underlying() after a first revalue()");
  auto it = std::lower_bound(underlying_names_.begin(), underlying_names_.end(), underlying);
  if (it == underlying_names_.end() || *it != underlying) return false;
  const auto u = static_cast<std::int32_t>(it - underlying_names_.begin());
  validate_underlying_market(market, "market: underlyings." + underlying);
  std::vector<UnderlyingMarket> next = current_;
  next[u] = market;
  apply(std::move(next), u);
  return true;
}

void Engine::update_cash(const std::vector<double>& cash) {
  VR_EXPECTS(!current_.empty(), "update_cash() after a first revalue()");
  VR_EXPECTS(static_cast<std::int64_t>(cash.size()) == layout_.n_accounts(), "update_cash(): one cash per account");
  for (std::size_t a = 0; a < cash.size(); ++a)
    if (!std::isfinite(cash[a])) throw input_error("cash of account #" + std::to_string(a) + " is not finite");
  scan_all_ = true;
  backend_->set_cash(cash);
  layout_.cash = cash;
  backend_->aggregate_accounts(-1);
  backend_->synchronize();
}

void Engine::update_positions(const Book& book, std::vector<std::int64_t> positions, std::vector<std::int32_t> accounts) {
  VR_EXPECTS(static_cast<std::int64_t>(book.account_count()) == layout_.n_accounts() &&
                 book.position_count() == layout_.pos_slot.size(),
             "update_positions(): the book has the accounts and positions laid out");
  std::vector<PositionUpdate> pos;
  for (const std::int64_t p : positions) {
    VR_EXPECTS(p >= 0 && p < static_cast<std::int64_t>(book.position_count()), "update_positions(): a position index");
    const std::size_t pi = static_cast<std::size_t>(p);
    pos.push_back(PositionUpdate{p, book.pos_account[pi], book.pos_quantity[pi], book.pos_entry[pi]});
    accounts.push_back(book.pos_account[pi]);
  }
  std::vector<CashPatch> cash;
  for (const std::int32_t a : accounts) {
    VR_EXPECTS(a >= 0 && a < layout_.n_accounts(), "update_positions(): an account index");
    cash.push_back(CashPatch{a, book.cash[static_cast<std::size_t>(a)]});
  }
  update_in_place(pos, std::move(cash));
}

void Engine::update_in_place(const std::vector<PositionUpdate>& positions, std::vector<CashPatch> accounts) {
  VR_EXPECTS(!current_.empty(), "update_positions() after a first revalue()");
  std::vector<PositionPatch> pos;
  std::vector<std::int32_t> blocks;
  for (const PositionUpdate& u : positions) {
    VR_EXPECTS(u.position >= 0 && u.position < static_cast<std::int64_t>(layout_.pos_slot.size()),
               "update_positions(): a position index");
    if (!std::isfinite(u.quantity) || !std::isfinite(u.entry))
      throw input_error("position #" + std::to_string(u.position) + " is not finite");
    const std::int64_t slot = layout_.pos_slot[static_cast<std::size_t>(u.position)];
    const auto b = static_cast<std::int32_t>(
        std::upper_bound(layout_.block_begin.begin(), layout_.block_begin.end(), slot) - layout_.block_begin.begin() - 1);
    VR_EXPECTS(layout_.block_account[b] == u.account, "update_positions(): the position's account as laid out");
    pos.push_back(PositionPatch{slot, u.quantity, u.entry});
    blocks.push_back(b);
  }
  std::sort(pos.begin(), pos.end(), [](const PositionPatch& x, const PositionPatch& y) { return x.slot < y.slot; });
  pos.erase(std::unique(pos.begin(), pos.end(), [](const PositionPatch& x, const PositionPatch& y) { return x.slot == y.slot; }),
            pos.end());
  std::sort(blocks.begin(), blocks.end());
  blocks.erase(std::unique(blocks.begin(), blocks.end()), blocks.end());
  std::sort(accounts.begin(), accounts.end(), [](const CashPatch& x, const CashPatch& y) { return x.account < y.account; });
  accounts.erase(std::unique(accounts.begin(), accounts.end(),
                             [](const CashPatch& x, const CashPatch& y) { return x.account == y.account; }),
                 accounts.end());
  std::vector<std::int32_t> ids;
  std::vector<CashPatch> cash;
  for (const CashPatch& c : accounts) {
    VR_EXPECTS(c.account >= 0 && c.account < layout_.n_accounts(), "update_positions(): an account index");
    if (!std::isfinite(c.cash)) throw input_error("cash of account #" + std::to_string(c.account) + " is not finite");
    ids.push_back(c.account);
    if (c.cash != layout_.cash[static_cast<std::size_t>(c.account)]) cash.push_back(c);
  }
  for (const PositionUpdate& u : positions)
    VR_EXPECTS(std::binary_search(ids.begin(), ids.end(), u.account), "update_positions(): a changed position's account is recomputed");
  if (!scan_all_) scan_only_.insert(scan_only_.end(), ids.begin(), ids.end());
  backend_->patch(pos, cash, blocks, ids);
  backend_->synchronize();
  for (const CashPatch& c : cash) layout_.cash[static_cast<std::size_t>(c.account)] = c.cash;
}

void Engine::synchronize() { backend_->synchronize(); }

std::vector<std::int32_t> Engine::account_underlyings(std::int32_t account) const {
  std::vector<std::int32_t> out;
  for (std::int64_t b = layout_.acct_block_begin[account]; b < layout_.acct_block_begin[account + 1]; ++b)
    out.push_back(layout_.block_underlying[b]);
  return out;
}

std::vector<double> Engine::scenario_row(std::int32_t instrument) const {
  const std::int32_t i = inst_internal_[instrument];
  std::vector<double> row;
  backend_->download_scenarios(i, i + 1, row);
  row.resize(layout_.margin[layout_.inst_underlying[i]].scen_count);
  return row;
}

InstrumentTable Engine::instruments() const {
  InstrumentTable internal, out;
  backend_->download(internal);
  auto reorder = [&](const std::vector<double>& in, std::vector<double>& o) {
    o.resize(in.size());
    for (std::size_t k = 0; k < in.size(); ++k) o[inst_file_index_[k]] = in[k];
  };
  reorder(internal.price, out.price);
  reorder(internal.vol, out.vol);
  reorder(internal.delta, out.delta);
  reorder(internal.gamma, out.gamma);
  reorder(internal.vega, out.vega);
  reorder(internal.theta, out.theta);
  reorder(internal.rho, out.rho);
  return out;
}

BlockResults Engine::blocks() const {
  BlockResults out;
  backend_->download(static_cast<BlockTable&>(out));
  out.account = layout_.block_account;
  out.underlying = layout_.block_underlying;
  return out;
}

std::vector<std::uint8_t> Engine::statuses() const {
  std::vector<std::uint8_t> out;
  backend_->download_status(out);
  return out;
}

Engine::AccountRow Engine::account(std::int32_t a) const {
  const AccountChange c = accounts({a}).at(0);
  return AccountRow{c.equity, c.mm, c.im, c.mm_surplus, c.im_surplus};
}

void Engine::set_reported_statuses(const std::vector<std::uint8_t>& status) {
  if (status.size() != static_cast<std::size_t>(layout_.n_accounts()))
    throw std::invalid_argument("set_reported_statuses: one status per account is needed");
  backend_->set_reported(status);
  scan_all_ = true;
}

std::vector<AccountChange> Engine::take_status_changes() {
  std::vector<AccountChange> out;
  if (scan_all_) {
    backend_->take_status_changes(out);
  } else {
    std::sort(scan_only_.begin(), scan_only_.end());
    scan_only_.erase(std::unique(scan_only_.begin(), scan_only_.end()), scan_only_.end());
    backend_->take_status_changes_among(scan_only_, out);
  }
  scan_all_ = false;
  scan_only_.clear();
  return out;
}

std::vector<AccountChange> Engine::accounts(const std::vector<std::int32_t>& ids) const {
  for (std::int32_t a : ids)
    if (a < 0 || a >= layout_.n_accounts()) throw std::out_of_range("Engine::accounts: no account " + std::to_string(a));
  std::vector<AccountChange> out;
  backend_->gather_accounts(ids, out);
  return out;
}

BlockResults Engine::account_blocks(std::int32_t account) const {
  const std::int64_t b0 = layout_.acct_block_begin[account], b1 = layout_.acct_block_begin[account + 1];
  BlockResults out;
  backend_->download_blocks(b0, b1, out);
  out.account.assign(layout_.block_account.begin() + b0, layout_.block_account.begin() + b1);
  out.underlying.assign(layout_.block_underlying.begin() + b0, layout_.block_underlying.begin() + b1);
  return out;
}

AccountTable Engine::accounts() const {
  AccountTable out;
  backend_->download(out);
  return out;
}

}  // namespace vaultrisk
