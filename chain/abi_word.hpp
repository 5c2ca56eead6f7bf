// 256-bit ABI words: unsigned and two's-complement signed integers, and money as
// 18-decimal fixed point rounded half-even from the exact binary value of a double.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "chain/bytes.hpp"

namespace vaultrisk::chain {

// A 256-bit word, big-endian as ABI-encoded.
struct Word {
  std::array<std::uint8_t, 32> be{};

  static Word from_u64(std::uint64_t x);
  static Word from_bytes32(const Hash32& h);
  static Word from_address(const Address& a);
  // round_half_even(x * 10^18); negative values in two's complement (int256).
  // Throws input_error when x is not finite or does not fit in 255 bits.
  static Word fixed18(double x);

  // Parses decimal text ("-" allowed when is_signed); throws input_error naming
  // `what` when it is not an integer or does not fit (uint256 / int256).
  static Word from_decimal(std::string_view text, bool is_signed, const std::string& what);
  bool negative() const { return be[0] & 0x80; }
  // Decimal text of the unsigned (or, with `is_signed`, two's-complement) value.
  std::string decimal(bool is_signed) const;
  bool operator==(const Word&) const = default;
};

// Appends a word to an ABI encoding.
inline void append(Bytes& out, const Word& w) { out.insert(out.end(), w.be.begin(), w.be.end()); }

}  // namespace vaultrisk::chain
