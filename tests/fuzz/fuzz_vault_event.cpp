// Vault events (SPEC §6) applied in sequence to a small book, as the service
// applies them. Input: subject NUL body NUL subject NUL body ... (up to 8 events).
// Properties: an event that is refused changes nothing; an applied one leaves every
// cash balance and position inside the numeric domain (core/limits.hpp).
#include <cmath>

#include "feeds/vault_state.hpp"
#include "io/book_csv.hpp"
#include "tests/fuzz/fuzz_common.hpp"

#include "core/limits.hpp"

using namespace vaultrisk;

namespace {

const Book& seed_book() {
  static const Book book = io::parse_book({
      "id,kind,underlying,expiry,strike,type\n"
      "BTC-PERP,perp,BTC,,,\n"
      "BTC-20270326-60000-C,option,BTC,1806048000,60000,C\n"
      "ETH-20270326-3000-P,option,ETH,1806048000,3000,P\n",
      "account,cash\n1,1000\n2,-50.5\n",
      "account,instrument,quantity,entry_price\n1,BTC-PERP,0.5,58000\n2,BTC-20270326-60000-C,-2,\n",
  });
  return book;
}

io::BookFiles files_of(const feeds::VaultState& s) { return io::format_book(s.book()); }

bool same(const io::BookFiles& a, const io::BookFiles& b) {
  return a.instruments == b.instruments && a.accounts == b.accounts && a.positions == b.positions;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view parts[16];
  fuzz::split(fuzz::as_text(data, size), parts);
  feeds::VaultState state(seed_book());
  for (std::size_t i = 0; i + 1 < 16; i += 2) {
    if (parts[i].empty()) break;
    const io::BookFiles before = files_of(state);
    try {
      state.apply(feeds::parse_vault_event(parts[i], parts[i + 1]));
    } catch (const input_error&) {
      fuzz::require(same(before, files_of(state)), "a refused event changes nothing");
      continue;
    }
    const Book& b = state.book();
    for (double cash : b.cash) fuzz::require(std::fabs(cash) <= limits::kMaxCash, "cash inside its domain");
    for (double q : b.pos_quantity)
      fuzz::require(std::fabs(q) <= limits::kMaxPosition && q != 0.0, "positions inside their domain, none empty");
    // What the state holds reads back as a valid book.
    io::parse_book(files_of(state));
  }
  return 0;
}
