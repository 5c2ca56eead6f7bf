// EIP-1559 (type 2) transactions: the signing hash, the signed raw bytes and the
// transaction hash, signed with libsecp256k1 through Signer.
#pragma once

#include <cstdint>
#include <optional>

#include "chain/bytes.hpp"
#include "chain/secp256k1.hpp"

namespace vaultrisk::chain {

struct Eip1559Tx {
  std::uint64_t chain_id = 0;
  std::uint64_t nonce = 0;
  std::uint64_t max_priority_fee_per_gas = 0;  // wei
  std::uint64_t max_fee_per_gas = 0;           // wei
  std::uint64_t gas_limit = 0;
  std::optional<Address> to;  // none: contract creation
  std::uint64_t value = 0;    // wei
  Bytes data;
};

// keccak256(0x02 || rlp([chainId, nonce, maxPriorityFee, maxFee, gas, to, value, data, []])).
Hash32 signing_hash(const Eip1559Tx& tx);

struct SignedTx {
  Bytes raw;    // 0x02 || rlp([... , yParity, r, s]): what eth_sendRawTransaction takes
  Hash32 hash;  // keccak256(raw)
};
SignedTx sign_transaction(const Eip1559Tx& tx, const Signer& signer);

// The address a contract created by `sender` with `nonce` gets: keccak256(rlp([sender, nonce]))[12:].
Address create_address(const Address& sender, std::uint64_t nonce);

}  // namespace vaultrisk::chain
