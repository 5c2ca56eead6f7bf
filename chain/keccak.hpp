// Keccak-256 as Ethereum uses it (original padding, not SHA3-256).
#pragma once

#include <string_view>

#include "chain/bytes.hpp"

namespace vaultrisk::chain {

Hash32 keccak256(const std::uint8_t* data, std::size_t n);
inline Hash32 keccak256(const Bytes& b) { return keccak256(b.data(), b.size()); }
inline Hash32 keccak256(std::string_view s) {
  return keccak256(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

// EIP-191 "personal_sign" hash: keccak256("\x19Ethereum Signed Message:\n" + len + message).
Hash32 personal_message_hash(std::string_view message);

}  // namespace vaultrisk::chain
