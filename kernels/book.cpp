// BookBuilder and underlying canonicalisation.
#include "kernels/book.hpp"

#include <algorithm>
#include <numeric>

#include "core/error.hpp"

namespace vaultrisk {

std::int32_t BookBuilder::underlying_index(const std::string& name) {
  auto it = std::find(und_names_.begin(), und_names_.end(), name);
  if (it != und_names_.end()) return static_cast<std::int32_t>(it - und_names_.begin());
  und_names_.push_back(name);
  return static_cast<std::int32_t>(und_names_.size()) - 1;
}

std::int32_t BookBuilder::add_option(const std::string& id, const std::string& underlying,
                                     double expiry, double strike, bool is_call) {
  book_.instrument_id.push_back(id);
  book_.kind.push_back(InstrumentKind::option);
  book_.underlying.push_back(underlying_index(underlying));
  book_.expiry.push_back(expiry);
  book_.strike.push_back(strike);
  book_.is_call.push_back(is_call ? 1 : 0);
  return static_cast<std::int32_t>(book_.instrument_id.size()) - 1;
}

std::int32_t BookBuilder::add_perp(const std::string& id, const std::string& underlying) {
  book_.instrument_id.push_back(id);
  book_.kind.push_back(InstrumentKind::perp);
  book_.underlying.push_back(underlying_index(underlying));
  book_.expiry.push_back(0.0);
  book_.strike.push_back(0.0);
  book_.is_call.push_back(0);
  return static_cast<std::int32_t>(book_.instrument_id.size()) - 1;
}

std::int32_t BookBuilder::add_account(std::uint64_t id, double cash) {
  book_.account_id.push_back(id);
  book_.cash.push_back(cash);
  return static_cast<std::int32_t>(book_.account_id.size()) - 1;
}

void BookBuilder::add_position(std::int32_t account, std::int32_t instrument, double quantity,
                               double entry) {
  VR_EXPECTS(account >= 0 && static_cast<std::size_t>(account) < book_.account_count(), "account index");
  VR_EXPECTS(instrument >= 0 && static_cast<std::size_t>(instrument) < book_.instrument_count(),
             "instrument index");
  book_.pos_account.push_back(account);
  book_.pos_instrument.push_back(instrument);
  book_.pos_quantity.push_back(quantity);
  book_.pos_entry.push_back(book_.kind[instrument] == InstrumentKind::perp ? entry : 0.0);
}

Book BookBuilder::build() && {
  book_.underlyings = std::move(und_names_);
  canonicalize_underlyings(book_);
  return std::move(book_);
}

void canonicalize_underlyings(Book& book) {
  const std::size_t n = book.underlyings.size();
  std::vector<std::int32_t> order(n), rank(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](std::int32_t a, std::int32_t b) { return book.underlyings[a] < book.underlyings[b]; });
  std::vector<std::string> sorted(n);
  for (std::size_t k = 0; k < n; ++k) {
    rank[order[k]] = static_cast<std::int32_t>(k);
    sorted[k] = book.underlyings[order[k]];
  }
  book.underlyings = std::move(sorted);
  for (auto& u : book.underlying) u = rank[u];
}

}  // namespace vaultrisk
