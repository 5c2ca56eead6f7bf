// Checksums of durable files (XXH3-64, Debian's libxxhash): every file the service
// writes carries one, so that damage is found, named and never loaded as state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vaultrisk {

std::uint64_t checksum(std::string_view bytes);
std::string checksum_hex(std::string_view bytes);  // 16 lowercase hex digits

// A sealed file is its content followed by the footer "#xxh3=<16 hex>\n" over the
// content. unseal() returns the content, or throws input_error naming `where` when
// the footer is missing or does not match (a cut, a flipped byte, an empty file).
std::string seal(std::string_view content);
std::string_view unseal(std::string_view sealed, const std::string& where);

}  // namespace vaultrisk
