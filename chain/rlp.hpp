// Recursive Length Prefix encoding (Ethereum yellow paper, appendix B): just what
// signed transactions need — byte strings, unsigned integers and lists.
#pragma once

#include <cstdint>
#include <vector>

#include "chain/bytes.hpp"

namespace vaultrisk::chain::rlp {

Bytes encode_bytes(const std::uint8_t* data, std::size_t n);
inline Bytes encode_bytes(const Bytes& b) { return encode_bytes(b.data(), b.size()); }
// Big-endian without leading zeros; zero is the empty string.
Bytes encode_uint(std::uint64_t x);
// An unsigned big-endian integer of any width (r, s of a signature), leading zeros stripped.
Bytes encode_uint_be(const std::uint8_t* data, std::size_t n);
// A list of already-encoded items.
Bytes encode_list(const std::vector<Bytes>& items);

}  // namespace vaultrisk::chain::rlp
