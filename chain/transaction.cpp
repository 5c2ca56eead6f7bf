// EIP-1559 transactions.
#include "chain/transaction.hpp"

#include <algorithm>
#include <vector>

#include "chain/keccak.hpp"
#include "chain/rlp.hpp"

namespace vaultrisk::chain {

namespace {

std::vector<Bytes> unsigned_fields(const Eip1559Tx& tx) {
  return {rlp::encode_uint(tx.chain_id),
          rlp::encode_uint(tx.nonce),
          rlp::encode_uint(tx.max_priority_fee_per_gas),
          rlp::encode_uint(tx.max_fee_per_gas),
          rlp::encode_uint(tx.gas_limit),
          tx.to ? rlp::encode_bytes(tx.to->data(), tx.to->size()) : rlp::encode_bytes(nullptr, 0),
          rlp::encode_uint(tx.value),
          rlp::encode_bytes(tx.data),
          rlp::encode_list({})};  // empty access list
}

Bytes typed(const Bytes& payload) {
  Bytes out(payload.size() + 1);
  out[0] = 0x02;
  std::copy(payload.begin(), payload.end(), out.begin() + 1);
  return out;
}

}  // namespace

Hash32 signing_hash(const Eip1559Tx& tx) { return keccak256(typed(rlp::encode_list(unsigned_fields(tx)))); }

SignedTx sign_transaction(const Eip1559Tx& tx, const Signer& signer) {
  const Signature sig = signer.sign(signing_hash(tx));
  std::vector<Bytes> fields = unsigned_fields(tx);
  fields.push_back(rlp::encode_uint(static_cast<std::uint64_t>(sig[64] - 27)));  // yParity
  fields.push_back(rlp::encode_uint_be(sig.data(), 32));
  fields.push_back(rlp::encode_uint_be(sig.data() + 32, 32));
  SignedTx out;
  out.raw = typed(rlp::encode_list(fields));
  out.hash = keccak256(out.raw);
  return out;
}

Address create_address(const Address& sender, std::uint64_t nonce) {
  const Hash32 h = keccak256(rlp::encode_list({rlp::encode_bytes(sender.data(), sender.size()), rlp::encode_uint(nonce)}));
  Address a;
  std::copy(h.begin() + 12, h.end(), a.begin());
  return a;
}

}  // namespace vaultrisk::chain
