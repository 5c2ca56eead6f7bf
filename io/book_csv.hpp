// Loads a book folder (SPEC §2): instruments.csv, accounts.csv, positions.csv.
#pragma once

#include <filesystem>

#include "kernels/book.hpp"

namespace vaultrisk::io {

// Validates everything; throws input_error naming file, line and field.
Book load_book(const std::filesystem::path& dir);

}  // namespace vaultrisk::io
