// The book folder's three CSV files (SPEC §2). Input: instruments NUL accounts NUL positions.
// Property: a book that loads survives a format and a load unchanged.
#include "io/book_csv.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace vaultrisk;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view parts[3];
  fuzz::split(fuzz::as_text(data, size), parts);
  fuzz::expect_input_errors([&] {
    const Book book = io::parse_book({std::string(parts[0]), std::string(parts[1]), std::string(parts[2])});
    const io::BookFiles once = io::format_book(book);
    const io::BookFiles twice = io::format_book(io::parse_book(once));
    fuzz::require(once.instruments == twice.instruments && once.accounts == twice.accounts &&
                      once.positions == twice.positions,
                  "format(load(format(book))) == format(book)");
  });
  return 0;
}
