// libsecp256k1 with its recovery module.
#include "chain/secp256k1.hpp"

#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "chain/keccak.hpp"
#include "core/error.hpp"
#include "io/csv_reader.hpp"

namespace vaultrisk::chain {

namespace {

const secp256k1_context* ctx() {
  static secp256k1_context* c = secp256k1_context_create(SECP256K1_CONTEXT_SIGN | SECP256K1_CONTEXT_VERIFY);
  return c;
}

Address address_of(const secp256k1_pubkey& pub) {
  std::uint8_t raw[65];
  std::size_t len = sizeof raw;
  secp256k1_ec_pubkey_serialize(ctx(), raw, &len, &pub, SECP256K1_EC_UNCOMPRESSED);
  const Hash32 h = keccak256(raw + 1, 64);
  Address a{};
  std::copy(h.begin() + 12, h.end(), a.begin());
  return a;
}

// s must be at most n/2 (EIP-2); signatures with a high s are malleable copies.
bool low_s(const std::uint8_t* s) {
  static const std::uint8_t kHalfN[32] = {0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                          0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x5D, 0x57, 0x6E, 0x73, 0x57, 0xA4,
                                          0x50, 0x1D, 0xDF, 0xE9, 0x2F, 0x46, 0x68, 0x1B, 0x20, 0xA0};
  return std::memcmp(s, kHalfN, 32) <= 0;
}

}  // namespace

Signer::Signer(std::string_view private_key_hex) {
  Bytes k;
  try {
    k = from_hex(private_key_hex);
  } catch (const input_error&) {
    throw input_error("signing key: not hex");
  }
  if (k.size() != 32) throw input_error("signing key: must be 32 bytes of hex");
  std::copy(k.begin(), k.end(), key_.begin());
  if (!secp256k1_ec_seckey_verify(ctx(), key_.data())) throw input_error("signing key: not a valid secp256k1 key");
  secp256k1_pubkey pub;
  if (!secp256k1_ec_pubkey_create(ctx(), &pub, key_.data())) throw input_error("signing key: cannot derive public key");
  address_ = address_of(pub);
}

Signature Signer::sign(const Hash32& digest) const {
  secp256k1_ecdsa_recoverable_signature sig;
  if (!secp256k1_ecdsa_sign_recoverable(ctx(), &sig, digest.data(), key_.data(), nullptr, nullptr))
    throw error("secp256k1 signing failed");
  Signature out{};
  int recid = 0;
  secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx(), out.data(), &recid, &sig);
  out[64] = static_cast<std::uint8_t>(27 + recid);
  return out;
}

std::optional<Address> recover_address(const Hash32& digest, const Signature& s) {
  int v = s[64];
  if (v >= 27) v -= 27;
  if (v != 0 && v != 1) return std::nullopt;
  if (!low_s(s.data() + 32)) return std::nullopt;
  secp256k1_ecdsa_recoverable_signature sig;
  if (!secp256k1_ecdsa_recoverable_signature_parse_compact(ctx(), &sig, s.data(), v)) return std::nullopt;
  secp256k1_pubkey pub;
  if (!secp256k1_ecdsa_recover(ctx(), &pub, &sig, digest.data())) return std::nullopt;
  return address_of(pub);
}

std::optional<Signature> signature_from_hex(std::string_view hex) {
  try {
    const Bytes b = from_hex(hex);
    if (b.size() != 65) return std::nullopt;
    Signature s{};
    std::copy(b.begin(), b.end(), s.begin());
    return s;
  } catch (const input_error&) {
    return std::nullopt;
  }
}

std::string read_key_file(const std::string& path) {
  std::string text = io::read_file(path);
  text.erase(std::remove_if(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c); }), text.end());
  return text;
}

}  // namespace vaultrisk::chain
