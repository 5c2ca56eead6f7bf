// Byte strings and 0x-hex, the currency of every EVM-facing function.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vaultrisk::chain {

using Bytes = std::vector<std::uint8_t>;
using Hash32 = std::array<std::uint8_t, 32>;
using Address = std::array<std::uint8_t, 20>;

// "0x" + lowercase hex.
std::string to_hex(const std::uint8_t* data, std::size_t n);
template <class C>
std::string to_hex(const C& c) {
  return to_hex(c.data(), c.size());
}

// Accepts an optional 0x prefix and either case; throws input_error on bad digits
// or (for the fixed-size forms) the wrong length.
Bytes from_hex(std::string_view hex);
Hash32 hash_from_hex(std::string_view hex);
Address address_from_hex(std::string_view hex);

}  // namespace vaultrisk::chain
