// secp256k1 keys, recoverable signatures (r || s || v, v = 27/28, low-s) and
// address recovery, through libsecp256k1.
#pragma once

#include <array>
#include <optional>
#include <string>

#include "chain/bytes.hpp"

namespace vaultrisk::chain {

using Signature = std::array<std::uint8_t, 65>;

class Signer {
 public:
  // 32-byte private key, hex; throws input_error when not a valid key.
  explicit Signer(std::string_view private_key_hex);
  const Address& address() const { return address_; }
  // Deterministic (RFC 6979), low-s, v = 27 + recovery id.
  Signature sign(const Hash32& digest) const;

 private:
  std::array<std::uint8_t, 32> key_{};
  Address address_{};
};

// Address that produced `sig` over `digest`, or nullopt for a malformed,
// high-s or unrecoverable signature.
std::optional<Address> recover_address(const Hash32& digest, const Signature& sig);

// The signature's bytes from 0x-hex, or nullopt when it is not 65 bytes of hex.
std::optional<Signature> signature_from_hex(std::string_view hex);

// Reads a hex private key from a file (whitespace ignored); throws input_error.
std::string read_key_file(const std::string& path);

}  // namespace vaultrisk::chain
