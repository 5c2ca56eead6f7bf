// A book as structure-of-arrays host data: instruments, accounts, positions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vaultrisk {

enum class InstrumentKind : std::uint8_t { option = 0, perp = 1 };
// kernels/functors.hpp weighs positions by the kind's value (perp 1, option 0).
static_assert(static_cast<int>(InstrumentKind::option) == 0 && static_cast<int>(InstrumentKind::perp) == 1);

struct Book {
  // Underlying names, sorted; instruments refer to them by index.
  std::vector<std::string> underlyings;

  // Instruments, in file order.
  std::vector<std::string> instrument_id;
  std::vector<InstrumentKind> kind;
  std::vector<std::int32_t> underlying;
  std::vector<double> expiry;  // unix seconds; 0 for perps
  std::vector<double> strike;  // 0 for perps
  std::vector<std::uint8_t> is_call;

  // Accounts, in file order.
  std::vector<std::uint64_t> account_id;
  std::vector<double> cash;

  // Positions, in file order; account and instrument are indices.
  std::vector<std::int32_t> pos_account;
  std::vector<std::int32_t> pos_instrument;
  std::vector<double> pos_quantity;
  std::vector<double> pos_entry;  // perps only; 0 for options

  std::size_t instrument_count() const { return instrument_id.size(); }
  std::size_t account_count() const { return account_id.size(); }
  std::size_t position_count() const { return pos_account.size(); }
};

// Builds a Book in code (tests, generators) with the same invariants as the loader.
class BookBuilder {
 public:
  std::int32_t add_option(const std::string& id, const std::string& underlying, double expiry,
                          double strike, bool is_call);
  std::int32_t add_perp(const std::string& id, const std::string& underlying);
  std::int32_t add_account(std::uint64_t id, double cash);
  void add_position(std::int32_t account, std::int32_t instrument, double quantity,
                    double entry = 0.0);
  // Sorts underlying names and remaps instrument indices onto them.
  Book build() &&;

 private:
  Book book_;
  std::vector<std::string> und_names_;  // insertion order
  std::int32_t underlying_index(const std::string& name);
};

// Sorts book.underlyings and renumbers book.underlying accordingly.
void canonicalize_underlyings(Book& book);

}  // namespace vaultrisk
