// Word arithmetic: just what encoding needs (shifts, small multiplies, negation).
#include "chain/abi_word.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace vaultrisk::chain {

namespace {

__extension__ typedef unsigned __int128 u128;  // GCC/Clang extension: exact 64x64 products

// Little-endian 64-bit limbs for arithmetic.
using Limbs = std::array<std::uint64_t, 4>;

Word to_word(const Limbs& l) {
  Word w;
  for (int i = 0; i < 4; ++i)
    for (int b = 0; b < 8; ++b) w.be[31 - (i * 8 + b)] = static_cast<std::uint8_t>(l[i] >> (8 * b));
  return w;
}

Limbs to_limbs(const Word& w) {
  Limbs l{};
  for (int i = 0; i < 4; ++i)
    for (int b = 0; b < 8; ++b) l[i] |= static_cast<std::uint64_t>(w.be[31 - (i * 8 + b)]) << (8 * b);
  return l;
}

Limbs negate(Limbs l) {
  u128 carry = 1;
  for (auto& x : l) {
    const u128 s = static_cast<u128>(~x) + carry;
    x = static_cast<std::uint64_t>(s);
    carry = s >> 64;
  }
  return l;
}

// Divides by 10 in place, returning the remainder.
unsigned div10(Limbs& l) {
  u128 rem = 0;
  for (int i = 3; i >= 0; --i) {
    const u128 cur = (rem << 64) | l[i];
    l[i] = static_cast<std::uint64_t>(cur / 10);
    rem = cur % 10;
  }
  return static_cast<unsigned>(rem);
}

bool is_zero(const Limbs& l) { return !(l[0] | l[1] | l[2] | l[3]); }

}  // namespace

Word Word::from_u64(std::uint64_t x) { return to_word(Limbs{x, 0, 0, 0}); }

Word Word::from_bytes32(const Hash32& h) {
  Word w;
  std::copy(h.begin(), h.end(), w.be.begin());
  return w;
}

Word Word::from_address(const Address& a) {
  Word w;
  std::copy(a.begin(), a.end(), w.be.begin() + 12);
  return w;
}

Word Word::fixed18(double x) {
  if (!std::isfinite(x)) throw input_error("fixed-point value is not finite");
  const bool neg = x < 0;
  int exp2 = 0;
  const double frac = std::frexp(std::fabs(x), &exp2);  // |x| = frac * 2^exp2, frac in [0.5, 1)
  const auto mant = static_cast<std::uint64_t>(std::ldexp(frac, 53));  // exact: |x| = mant * 2^(exp2-53)
  const int e = exp2 - 53;
  // p = mant * 10^18 < 2^113: exact in 128 bits.
  const u128 p = static_cast<u128>(mant) * 1000000000000000000ull;
  Limbs l{};
  if (e >= 0) {
    if (e > 255 - 113) throw input_error("fixed-point value too large for int256");
    l = Limbs{static_cast<std::uint64_t>(p), static_cast<std::uint64_t>(p >> 64), 0, 0};
    // Shift left by e bits.
    const int words = e / 64, bits = e % 64;
    Limbs s{};
    for (int i = 3; i >= 0; --i) {
      if (i - words < 0) continue;
      s[i] = l[i - words] << bits;
      if (bits && i - words - 1 >= 0) s[i] |= l[i - words - 1] >> (64 - bits);
    }
    l = s;
    if (l[3] >> 63) throw input_error("fixed-point value too large for int256");
  } else {
    const int sh = -e;
    u128 q = 0;
    if (sh < 128) {
      q = p >> sh;
      const u128 rem = p & ((static_cast<u128>(1) << sh) - 1);
      const u128 half = static_cast<u128>(1) << (sh - 1);
      if (rem > half || (rem == half && (q & 1))) ++q;  // round half to even
    }
    l = Limbs{static_cast<std::uint64_t>(q), static_cast<std::uint64_t>(q >> 64), 0, 0};
  }
  return to_word(neg && !is_zero(l) ? negate(l) : l);
}

Word Word::from_decimal(std::string_view text, bool is_signed, const std::string& what) {
  const bool neg = is_signed && !text.empty() && text[0] == '-';
  if (neg) text.remove_prefix(1);
  if (text.empty() || text.size() > 78) throw input_error(what + ": not a " + (is_signed ? "int256" : "uint256") + " in decimal");
  Limbs l{};
  for (char c : text) {
    if (c < '0' || c > '9') throw input_error(what + ": '" + std::string(text) + "' is not a decimal integer");
    // l = l * 10 + digit, watching for overflow out of 256 bits.
    u128 carry = static_cast<unsigned>(c - '0');
    for (auto& x : l) {
      const u128 v = static_cast<u128>(x) * 10 + carry;
      x = static_cast<std::uint64_t>(v);
      carry = v >> 64;
    }
    if (carry) throw input_error(what + ": value does not fit in 256 bits");
  }
  if (is_signed && (l[3] >> 63) && !(neg && l[3] == (1ull << 63) && !l[2] && !l[1] && !l[0]))
    throw input_error(what + ": value does not fit in int256");
  return to_word(neg && !is_zero(l) ? negate(l) : l);
}

std::string Word::decimal(bool is_signed) const {
  Limbs l = to_limbs(*this);
  const bool neg = is_signed && negative();
  if (neg) l = negate(l);
  std::string s;
  do {
    s += static_cast<char>('0' + div10(l));
  } while (!is_zero(l));
  if (neg) s += '-';
  std::reverse(s.begin(), s.end());
  return s;
}

}  // namespace vaultrisk::chain
