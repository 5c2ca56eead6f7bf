// EIP-712 typed data for vaultrisk's LiquidationIntent (SPEC §7).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "chain/abi_word.hpp"
#include "chain/bytes.hpp"

namespace vaultrisk::chain {

struct Eip712Domain {
  std::uint64_t chain_id = 31337;
  Address verifying_contract{};
};

struct LiquidationIntent {
  std::uint64_t account = 0;
  std::uint64_t nonce = 0;
  std::uint64_t deadline = 0;  // unix seconds
  std::uint64_t epoch = 0;
  double equity = 0.0;               // encoded as int256, 18 decimals
  double maintenance_margin = 0.0;   // encoded as uint256, 18 decimals
  Hash32 market_digest{};
};

inline constexpr const char* kLiquidationIntentType =
    "LiquidationIntent(uint256 account,uint64 nonce,uint64 deadline,uint64 epoch,int256 equity,"
    "uint256 maintenanceMargin,bytes32 marketDigest)";

// The intent as ABI words: exactly what is signed, and what the published body
// carries as decimal strings (doubles do not survive that round trip; words do).
struct EncodedIntent {
  std::uint64_t account = 0, nonce = 0, deadline = 0, epoch = 0;
  Word equity, maintenance_margin;  // int256, uint256
  Hash32 market_digest{};
  // Throws input_error when maintenanceMargin is negative or a value does not fit.
  static EncodedIntent from(const LiquidationIntent& i);
  // Appends the seven fields as ABI words, in type order: the struct hash's input
  // after the type hash, and the static tuple of a contract call.
  void append_words(Bytes& out) const;
};

// The published body's "intent" object (SPEC §6: integers as decimal strings, hashes
// 0x-hex) as words; throws input_error naming the field.
EncodedIntent parse_intent_json(std::string_view intent_object_json);

Hash32 domain_separator(const Eip712Domain& d);
Hash32 struct_hash(const EncodedIntent& i);
Hash32 typed_data_digest(const Eip712Domain& d, const EncodedIntent& i);
Hash32 struct_hash(const LiquidationIntent& i);
// keccak256(0x1901 || domainSeparator || structHash): what the signer signs.
Hash32 typed_data_digest(const Eip712Domain& d, const LiquidationIntent& i);

}  // namespace vaultrisk::chain
