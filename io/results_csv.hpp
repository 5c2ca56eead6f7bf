// Writers for the CLI outputs (SPEC §5); files appear whole or not at all.
#pragma once

#include <filesystem>
#include <string>

#include "kernels/book.hpp"
#include "kernels/engine.hpp"

namespace vaultrisk::io {

std::string price_csv(const Book& book, const InstrumentTable& t);
std::string accounts_csv(const Book& book, const AccountTable& t);
std::string account_underlyings_csv(const Book& book, const BlockResults& t);

const char* status_name(std::uint8_t status);

// Writes `content` to a temporary file beside `path`, then renames it into place.
void write_file_atomic(const std::filesystem::path& path, const std::string& content);

}  // namespace vaultrisk::io
