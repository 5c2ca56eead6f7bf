// Writers for the CLI outputs (SPEC §5); files appear whole or not at all.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "kernels/book.hpp"
#include "kernels/engine.hpp"

namespace vaultrisk::io {

// Each writes its CSV atomically (temporary file, then rename).
void write_price_csv(const std::filesystem::path& path, const Book& book, const InstrumentTable& t);
void write_accounts_csv(const std::filesystem::path& path, const Book& book, const AccountTable& t);
void write_account_underlyings_csv(const std::filesystem::path& path, const Book& book, const BlockResults& t);

const char* status_name(std::uint8_t status);

// Streams `rows` rows, formatted in parallel chunks by `format_row(i, out)`, after
// `header`, into a temporary file beside `path`, then renames it into place.
void write_rows_atomic(const std::filesystem::path& path, const std::string& header, std::size_t rows,
                       const std::function<void(std::size_t, std::string&)>& format_row);

}  // namespace vaultrisk::io
