// RLP.
#include "chain/rlp.hpp"

namespace vaultrisk::chain::rlp {

namespace {

// The length prefix: offset + len for short payloads, offset + 55 + len-of-len then len otherwise.
Bytes prefix(std::size_t len, std::uint8_t offset) {
  if (len <= 55) return {static_cast<std::uint8_t>(offset + len)};
  Bytes be;
  for (std::size_t x = len; x; x >>= 8) be.insert(be.begin(), static_cast<std::uint8_t>(x & 0xff));
  Bytes out{static_cast<std::uint8_t>(offset + 55 + be.size())};
  out.insert(out.end(), be.begin(), be.end());
  return out;
}

}  // namespace

Bytes encode_bytes(const std::uint8_t* data, std::size_t n) {
  if (n == 1 && data[0] < 0x80) return {data[0]};
  Bytes out = prefix(n, 0x80);
  out.insert(out.end(), data, data + n);
  return out;
}

Bytes encode_uint(std::uint64_t x) {
  std::uint8_t be[8];
  for (int i = 0; i < 8; ++i) be[i] = static_cast<std::uint8_t>(x >> (8 * (7 - i)));
  return encode_uint_be(be, 8);
}

Bytes encode_uint_be(const std::uint8_t* data, std::size_t n) {
  std::size_t skip = 0;
  while (skip < n && data[skip] == 0) ++skip;
  return encode_bytes(data + skip, n - skip);
}

Bytes encode_list(const std::vector<Bytes>& items) {
  std::size_t len = 0;
  for (const Bytes& i : items) len += i.size();
  Bytes out = prefix(len, 0xc0);
  for (const Bytes& i : items) out.insert(out.end(), i.begin(), i.end());
  return out;
}

}  // namespace vaultrisk::chain::rlp
