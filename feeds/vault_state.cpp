// Vault event parsing and application.
#include "feeds/vault_state.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/error.hpp"
#include "core/limits.hpp"
#include "io/csv_reader.hpp"
#include "io/json_fields.hpp"

namespace vaultrisk::feeds {

namespace {

std::uint64_t parse_u64(std::string_view s, const std::string& what) {
  std::uint64_t x = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), x);
  if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size()) throw input_error(what + ": not an unsigned 64-bit integer");
  return x;
}

std::uint64_t account_field(const io::json& j) {
  if (!j.contains("account")) throw input_error("event.account: missing");
  const io::json& a = j["account"];
  if (a.is_number_unsigned()) return a.get<std::uint64_t>();
  if (a.is_string()) return parse_u64(a.get<std::string>(), "event.account");  // ids beyond 2^53 as strings
  throw input_error("event.account: must be an unsigned integer (or its decimal string)");
}

std::string string_field(const io::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) throw input_error(std::string("event.") + key + ": missing or not a string");
  return j[key].get<std::string>();
}

std::uint64_t key(std::int32_t a, std::int32_t i) {
  return static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32 | static_cast<std::uint32_t>(i);
}

}  // namespace

VaultEvent parse_vault_event(std::string_view subject, std::string_view body) {
  constexpr std::string_view prefix = "vault.event.";
  if (subject.substr(0, prefix.size()) != prefix) throw input_error("subject: expected vault.event.<type>.<key>");
  const std::string_view rest = subject.substr(prefix.size());
  const auto dot = rest.find('.');
  if (dot == std::string_view::npos) throw input_error("subject: expected vault.event.<type>.<key>");
  const std::string_view type = rest.substr(0, dot), tail = rest.substr(dot + 1);
  const io::json j = io::parse_json(body, "event");
  VaultEvent e;
  if (type == "instrument") {
    io::require_object(j, "event", {"id", "kind", "underlying", "expiry", "strike", "type"});
    e.type = EventType::instrument;
    e.instrument_id = string_field(j, "id");
    e.underlying = string_field(j, "underlying");
    e.kind = string_field(j, "kind");
    if (!io::valid_token(e.instrument_id, 64, true)) throw input_error("event.id: must match [A-Za-z0-9._-]{1,64}");
    if (!io::valid_token(e.underlying, 32, false)) throw input_error("event.underlying: must match [A-Za-z0-9_-]{1,32}");
    if (tail != e.underlying) throw input_error("subject: listing for '" + std::string(tail) + "' but body underlying is '" + e.underlying + "'");
    if (e.kind == "option") {
      e.expiry = io::require_number(j, "expiry", "event");
      e.strike = io::require_number(j, "strike", "event");
      e.option_type = string_field(j, "type");
      limits::require_range(e.expiry, 0, limits::kMaxTime, "event.expiry");
      if (e.expiry != std::floor(e.expiry)) throw input_error("event.expiry: must be whole unix seconds");
      limits::require_range(e.strike, limits::kMinPrice, limits::kMaxPrice, "event.strike");
      if (e.option_type != "C" && e.option_type != "P") throw input_error("event.type: must be C or P");
    } else if (e.kind == "perp") {
      for (const char* k : {"expiry", "strike", "type"})
        if (j.contains(k) && !j[k].is_null() && !(j[k].is_string() && j[k].get<std::string>().empty()))
          throw input_error(std::string("event.") + k + ": must be absent for a perp");
    } else {
      throw input_error("event.kind: must be option or perp");
    }
    // A listing's identity is its instrument: listing it twice is refused anyway.
    e.id = "instrument:" + e.instrument_id;
    return e;
  }
  if (type == "deposit" || type == "withdraw") {
    io::require_object(j, "event", {"id", "account", "amount"});
    e.type = type == "deposit" ? EventType::deposit : EventType::withdraw;
    e.amount = io::require_number(j, "amount", "event");
    if (!(e.amount > 0)) throw input_error("event.amount: must be positive");
    limits::require_range(e.amount, 0, limits::kMaxAmount, "event.amount");
  } else if (type == "trade") {
    io::require_object(j, "event", {"id", "account", "instrument", "quantity", "price"});
    e.type = EventType::trade;
    e.instrument = string_field(j, "instrument");
    e.quantity = io::require_number(j, "quantity", "event");
    e.price = io::require_number(j, "price", "event");
    if (e.quantity == 0) throw input_error("event.quantity: must not be zero");
    if (e.price < 0) throw input_error("event.price: must not be negative");
    limits::require_range(e.quantity, -limits::kMaxTradeQuantity, limits::kMaxTradeQuantity, "event.quantity");
    limits::require_range(e.price, 0, limits::kMaxPrice, "event.price");
  } else {
    throw input_error("subject: unknown event type '" + std::string(type) + "'");
  }
  e.account = account_field(j);
  // vault.event.<type>.<account>, or vault.event.<type>.<account>.<partition> once a
  // cluster's nats-server has mapped it (SPEC §9; the service checks the partition).
  std::string_view account_token = tail;
  if (const auto pdot = tail.find('.'); pdot != std::string_view::npos) account_token = tail.substr(0, pdot);
  if (parse_u64(account_token, "subject account") != e.account)
    throw input_error("subject: account " + std::string(account_token) + " but body account is " + std::to_string(e.account));
  // The event's identity is its body id (SPEC §6), and nothing else: Nats-Msg-Id is
  // JetStream's de-duplication key, set by the publisher, and may differ or be absent.
  e.id = string_field(j, "id");
  if (!limits::valid_event_id(e.id)) throw input_error("event.id: must be 1..128 printable ASCII characters");
  return e;
}

VaultState::VaultState(Book book) : book_(std::move(book)) {
  for (std::size_t i = 0; i < book_.instrument_count(); ++i) inst_[book_.instrument_id[i]] = static_cast<std::int32_t>(i);
  for (std::size_t a = 0; a < book_.account_count(); ++a) acct_[book_.account_id[a]] = static_cast<std::int32_t>(a);
  for (std::size_t p = 0; p < book_.position_count(); ++p) pos_[key(book_.pos_account[p], book_.pos_instrument[p])] = p;
  structural_ = true;
}

std::int32_t VaultState::account_index(std::uint64_t id) const {
  auto it = acct_.find(id);
  return it == acct_.end() ? -1 : it->second;
}

std::int32_t VaultState::instrument_index(const std::string& id) const {
  auto it = inst_.find(id);
  return it == inst_.end() ? -1 : it->second;
}

std::vector<std::size_t> VaultState::positions_of(std::int32_t account) const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < book_.instrument_count(); ++i)
    if (auto it = pos_.find(key(account, static_cast<std::int32_t>(i))); it != pos_.end()) out.push_back(it->second);
  std::sort(out.begin(), out.end());
  return out;
}

VaultState::Touched VaultState::take_touched() {
  Touched out;
  std::swap(out, touched_);
  return out;
}

bool VaultState::take_structural_change() {
  const bool s = structural_;
  structural_ = false;
  return s;
}

Applied VaultState::apply(const VaultEvent& e) {
  // Listings are idempotent by their terms (below), everything else by its event id.
  if (e.type != EventType::instrument && seen_.contains(e.id)) return Applied::duplicate;
  switch (e.type) {
    case EventType::instrument: {
      if (auto it = inst_.find(e.instrument_id); it != inst_.end()) {
        // The same terms again (a redelivery, a republished listing): a no-op. Other terms: refused.
        const std::int32_t i = it->second;
        const bool perp = e.kind == "perp";
        if (book_.underlyings[book_.underlying[i]] == e.underlying && (book_.kind[i] == InstrumentKind::perp) == perp &&
            (perp || (book_.expiry[i] == e.expiry && book_.strike[i] == e.strike && (book_.is_call[i] != 0) == (e.option_type == "C"))))
          return Applied::duplicate;
        throw input_error("instrument '" + e.instrument_id + "' is already listed with other terms");
      }
      auto u = std::find(book_.underlyings.begin(), book_.underlyings.end(), e.underlying);
      if (u == book_.underlyings.end()) {
        // A new underlying: renumber so names stay sorted.
        book_.underlyings.push_back(e.underlying);
        canonicalize_underlyings(book_);
      }
      const auto ui = static_cast<std::int32_t>(
          std::find(book_.underlyings.begin(), book_.underlyings.end(), e.underlying) - book_.underlyings.begin());
      // canonicalize_underlyings renumbers existing instruments; append after it.
      book_.instrument_id.push_back(e.instrument_id);
      book_.kind.push_back(e.kind == "perp" ? InstrumentKind::perp : InstrumentKind::option);
      book_.underlying.push_back(ui);
      book_.expiry.push_back(e.kind == "perp" ? 0.0 : e.expiry);
      book_.strike.push_back(e.kind == "perp" ? 0.0 : e.strike);
      book_.is_call.push_back(e.option_type == "C");
      inst_[e.instrument_id] = static_cast<std::int32_t>(book_.instrument_count()) - 1;
      structural_ = true;
      break;
    }
    case EventType::deposit: {
      const std::int32_t a = account_index(e.account);
      if (a >= 0) require_cash(book_.cash[a] + e.amount, e.account);
      if (a < 0) {  // a first deposit opens the account
        book_.account_id.push_back(e.account);
        book_.cash.push_back(e.amount);
        acct_[e.account] = static_cast<std::int32_t>(book_.account_count()) - 1;
        touched_.reshaped.push_back(static_cast<std::int32_t>(book_.account_count()) - 1);
        structural_ = true;
      } else {
        book_.cash[a] += e.amount;
        touched_.accounts.push_back(a);
      }
      break;
    }
    case EventType::withdraw: {
      const std::int32_t a = account_index(e.account);
      if (a < 0) throw input_error("withdraw: unknown account " + std::to_string(e.account));
      require_cash(book_.cash[a] - e.amount, e.account);
      book_.cash[a] -= e.amount;
      touched_.accounts.push_back(a);
      break;
    }
    case EventType::trade:
      apply_trade(e);
      break;
  }
  mark_seen(e.id);
  return Applied::applied;
}

void VaultState::mark_seen(const std::string& id) { seen_.insert(id); }

void VaultState::set_seen_window(std::size_t n) { seen_.set_window(n); }

void VaultState::apply_trade(const VaultEvent& e) {
  const std::int32_t a = account_index(e.account);
  if (a < 0) throw input_error("trade: unknown account " + std::to_string(e.account) + " (deposit first)");
  const std::int32_t i = instrument_index(e.instrument);
  if (i < 0) throw input_error("trade: unknown instrument '" + e.instrument + "'");
  const bool perp = book_.kind[i] == InstrumentKind::perp;
  if (perp) limits::require_range(e.price, limits::kMinPrice, limits::kMaxPrice, "trade: a perp's price");
  // The outcome first, checked against the numeric domain; the book changes only
  // once every check has passed.
  auto it = pos_.find(key(a, i));
  const bool fresh = it == pos_.end();
  const double q0 = fresh ? 0.0 : book_.pos_quantity[it->second];
  const double entry0 = fresh || !perp ? e.price : book_.pos_entry[it->second];
  double q = q0 + e.quantity, entry = perp ? entry0 : 0.0, cash = book_.cash[a];
  if (!perp) {
    cash -= e.quantity * e.price;
  } else if (!fresh && (q0 > 0) == (e.quantity > 0)) {  // increase: quantity-weighted average entry
    entry = (std::fabs(q0) * entry0 + std::fabs(e.quantity) * e.price) / (std::fabs(q0) + std::fabs(e.quantity));
  } else if (!fresh) {  // reduction (and maybe a flip): realise the closed part
    const double closed = std::min(std::fabs(e.quantity), std::fabs(q0));
    cash += (q0 > 0 ? closed : -closed) * (e.price - entry0);
    if (std::fabs(e.quantity) > std::fabs(q0)) entry = e.price;
  }
  limits::require_range(q, -limits::kMaxPosition, limits::kMaxPosition,
                        "trade: position of account " + std::to_string(e.account) + " in '" + e.instrument + "' after it");
  require_cash(cash, e.account);
  book_.cash[a] = cash;
  touched_.accounts.push_back(a);
  if (fresh) {
    structural_ = true;  // a new position
    touched_.reshaped.push_back(a);
    book_.pos_account.push_back(a);
    book_.pos_instrument.push_back(i);
    book_.pos_quantity.push_back(q);
    book_.pos_entry.push_back(entry);
    pos_[key(a, i)] = book_.position_count() - 1;
    return;
  }
  const std::size_t p = it->second;
  book_.pos_quantity[p] = q;
  book_.pos_entry[p] = entry;
  if (q == 0.0) {
    remove_position(p);  // structural: positions are renumbered
  } else {
    touched_.positions.push_back(static_cast<std::int64_t>(p));  // in place
  }
}

void VaultState::require_cash(double cash, std::uint64_t account) {
  limits::require_range(cash, -limits::kMaxCash, limits::kMaxCash,
                        "cash of account " + std::to_string(account) + " after the event");
}

void VaultState::remove_position(std::size_t p) {
  const std::size_t last = book_.position_count() - 1;
  pos_.erase(key(book_.pos_account[p], book_.pos_instrument[p]));
  touched_.reshaped.push_back(book_.pos_account[p]);
  if (p != last) {
    touched_.reshaped.push_back(book_.pos_account[last]);  // its position moves to p
    book_.pos_account[p] = book_.pos_account[last];
    book_.pos_instrument[p] = book_.pos_instrument[last];
    book_.pos_quantity[p] = book_.pos_quantity[last];
    book_.pos_entry[p] = book_.pos_entry[last];
    pos_[key(book_.pos_account[p], book_.pos_instrument[p])] = p;
  }
  book_.pos_account.pop_back();
  book_.pos_instrument.pop_back();
  book_.pos_quantity.pop_back();
  book_.pos_entry.pop_back();
  structural_ = true;
}

}  // namespace vaultrisk::feeds
