// Vault event parsing and application.
#include "feeds/vault_state.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/error.hpp"
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

VaultEvent parse_vault_event(std::string_view subject, std::string_view body, std::string_view msg_id) {
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
      if (e.expiry < 0 || e.expiry != std::floor(e.expiry)) throw input_error("event.expiry: must be whole unix seconds");
      if (!(e.strike > 0)) throw input_error("event.strike: must be positive");
      if (e.option_type != "C" && e.option_type != "P") throw input_error("event.type: must be C or P");
    } else if (e.kind == "perp") {
      for (const char* k : {"expiry", "strike", "type"})
        if (j.contains(k) && !j[k].is_null() && !(j[k].is_string() && j[k].get<std::string>().empty()))
          throw input_error(std::string("event.") + k + ": must be absent for a perp");
    } else {
      throw input_error("event.kind: must be option or perp");
    }
    e.id = msg_id.empty() ? "instrument:" + e.instrument_id : std::string(msg_id);
    return e;
  }
  if (type == "deposit" || type == "withdraw") {
    io::require_object(j, "event", {"id", "account", "amount"});
    e.type = type == "deposit" ? EventType::deposit : EventType::withdraw;
    e.amount = io::require_number(j, "amount", "event");
    if (!(e.amount > 0)) throw input_error("event.amount: must be positive");
  } else if (type == "trade") {
    io::require_object(j, "event", {"id", "account", "instrument", "quantity", "price"});
    e.type = EventType::trade;
    e.instrument = string_field(j, "instrument");
    e.quantity = io::require_number(j, "quantity", "event");
    e.price = io::require_number(j, "price", "event");
    if (e.quantity == 0) throw input_error("event.quantity: must not be zero");
    if (e.price < 0) throw input_error("event.price: must not be negative");
  } else {
    throw input_error("subject: unknown event type '" + std::string(type) + "'");
  }
  e.account = account_field(j);
  if (parse_u64(tail, "subject account") != e.account)
    throw input_error("subject: account " + std::string(tail) + " but body account is " + std::to_string(e.account));
  // The event's identity is its body id (SPEC §6); Nats-Msg-Id carries the same value
  // for JetStream's de-duplication and stands in only when the body has none.
  e.id = j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>() : std::string(msg_id);
  if (e.id.empty()) throw input_error("event.id: missing (and no Nats-Msg-Id header)");
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

bool VaultState::take_structural_change() {
  const bool s = structural_;
  structural_ = false;
  return s;
}

Applied VaultState::apply(const VaultEvent& e) {
  if (seen_.count(e.id)) return Applied::duplicate;
  switch (e.type) {
    case EventType::instrument: {
      if (inst_.count(e.instrument_id)) throw input_error("instrument '" + e.instrument_id + "' is already listed");
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
      if (a < 0) {  // a first deposit opens the account
        book_.account_id.push_back(e.account);
        book_.cash.push_back(e.amount);
        acct_[e.account] = static_cast<std::int32_t>(book_.account_count()) - 1;
        structural_ = true;
      } else {
        book_.cash[a] += e.amount;
      }
      break;
    }
    case EventType::withdraw: {
      const std::int32_t a = account_index(e.account);
      if (a < 0) throw input_error("withdraw: unknown account " + std::to_string(e.account));
      book_.cash[a] -= e.amount;
      break;
    }
    case EventType::trade:
      apply_trade(e);
      break;
  }
  mark_seen(e.id);
  return Applied::applied;
}

void VaultState::mark_seen(const std::string& id) {
  if (!seen_.insert(id).second) return;
  seen_order_.push_back(id);
  trim_seen();
}

void VaultState::set_seen_window(std::size_t n) {
  seen_window_ = std::max<std::size_t>(n, 1);
  trim_seen();
}

void VaultState::trim_seen() {
  while (seen_order_.size() > seen_window_) {
    seen_.erase(seen_order_.front());
    seen_order_.pop_front();
  }
}

void VaultState::apply_trade(const VaultEvent& e) {
  const std::int32_t a = account_index(e.account);
  if (a < 0) throw input_error("trade: unknown account " + std::to_string(e.account) + " (deposit first)");
  const std::int32_t i = instrument_index(e.instrument);
  if (i < 0) throw input_error("trade: unknown instrument '" + e.instrument + "'");
  const bool perp = book_.kind[i] == InstrumentKind::perp;
  if (perp && !(e.price > 0)) throw input_error("trade: a perp price must be positive");
  auto it = pos_.find(key(a, i));
  if (it == pos_.end()) {
    book_.pos_account.push_back(a);
    book_.pos_instrument.push_back(i);
    book_.pos_quantity.push_back(e.quantity);
    book_.pos_entry.push_back(perp ? e.price : 0.0);
    pos_[key(a, i)] = book_.position_count() - 1;
    if (!perp) book_.cash[a] -= e.quantity * e.price;
    structural_ = true;
    return;
  }
  const std::size_t p = it->second;
  structural_ = true;  // a quantity or entry changed: the engine's layout holds both
  double& q = book_.pos_quantity[p];
  if (!perp) {
    book_.cash[a] -= e.quantity * e.price;
    q += e.quantity;
  } else {
    double& entry = book_.pos_entry[p];
    if ((q > 0) == (e.quantity > 0)) {  // increase: quantity-weighted average entry
      entry = (std::fabs(q) * entry + std::fabs(e.quantity) * e.price) / (std::fabs(q) + std::fabs(e.quantity));
      q += e.quantity;
    } else {  // reduction (and maybe a flip): realise the closed part
      const double closed = std::min(std::fabs(e.quantity), std::fabs(q));
      book_.cash[a] += (q > 0 ? closed : -closed) * (e.price - entry);
      const bool flips = std::fabs(e.quantity) > std::fabs(q);
      q += e.quantity;
      if (flips) entry = e.price;
    }
  }
  if (q == 0.0) remove_position(p);
}

void VaultState::remove_position(std::size_t p) {
  const std::size_t last = book_.position_count() - 1;
  pos_.erase(key(book_.pos_account[p], book_.pos_instrument[p]));
  if (p != last) {
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
