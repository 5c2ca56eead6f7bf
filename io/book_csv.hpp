// Loads a book folder (SPEC §2): instruments.csv, accounts.csv, positions.csv.
#pragma once

#include <filesystem>
#include <string>

#include "kernels/book.hpp"

namespace vaultrisk::io {

// Validates everything; throws input_error naming file, line and field.
Book load_book(const std::filesystem::path& dir);

// The three files of a book, as load_book reads them (numbers in shortest
// round-trip form, so a book survives a save and a load exactly).
struct BookFiles {
  std::string instruments, accounts, positions;
};
BookFiles format_book(const Book& book);

// The same checks as load_book over the three files' text (errors name
// instruments.csv, accounts.csv, positions.csv).
Book parse_book(BookFiles files);

}  // namespace vaultrisk::io
