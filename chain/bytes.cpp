// Hex conversion.
#include "chain/bytes.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace vaultrisk::chain {

std::string to_hex(const std::uint8_t* data, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s = "0x";
  s.reserve(2 + 2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    s += kDigits[data[i] >> 4];
    s += kDigits[data[i] & 15];
  }
  return s;
}

namespace {
int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
template <std::size_t N>
std::array<std::uint8_t, N> fixed(std::string_view hex, const char* what) {
  const Bytes b = from_hex(hex);
  if (b.size() != N) throw input_error(std::string(what) + " must be " + std::to_string(N) + " bytes, got " + std::to_string(b.size()));
  std::array<std::uint8_t, N> out{};
  std::copy(b.begin(), b.end(), out.begin());
  return out;
}
}  // namespace

Bytes from_hex(std::string_view hex) {
  if (hex.size() >= 2 && hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) hex.remove_prefix(2);
  if (hex.size() % 2) throw input_error("hex string has an odd number of digits");
  Bytes out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) throw input_error("not a hex string");
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return out;
}

Hash32 hash_from_hex(std::string_view hex) { return fixed<32>(hex, "a 32-byte hash"); }
Address address_from_hex(std::string_view hex) { return fixed<20>(hex, "an address"); }

}  // namespace vaultrisk::chain
