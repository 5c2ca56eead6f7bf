// EIP-712 encoding.
#include "chain/eip712.hpp"

#include "chain/keccak.hpp"
#include "core/error.hpp"

namespace vaultrisk::chain {

Hash32 domain_separator(const Eip712Domain& d) {
  Bytes enc;
  append(enc, Word::from_bytes32(
                  keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")));
  append(enc, Word::from_bytes32(keccak256("vaultrisk")));
  append(enc, Word::from_bytes32(keccak256("1")));
  append(enc, Word::from_u64(d.chain_id));
  append(enc, Word::from_address(d.verifying_contract));
  return keccak256(enc);
}

Hash32 struct_hash(const LiquidationIntent& i) {
  if (i.maintenance_margin < 0) throw input_error("maintenanceMargin must not be negative");
  Bytes enc;
  append(enc, Word::from_bytes32(keccak256(kLiquidationIntentType)));
  append(enc, Word::from_u64(i.account));
  append(enc, Word::from_u64(i.nonce));
  append(enc, Word::from_u64(i.deadline));
  append(enc, Word::from_u64(i.epoch));
  append(enc, Word::fixed18(i.equity));
  append(enc, Word::fixed18(i.maintenance_margin));
  append(enc, Word::from_bytes32(i.market_digest));
  return keccak256(enc);
}

Hash32 typed_data_digest(const Eip712Domain& d, const LiquidationIntent& i) {
  Bytes enc{0x19, 0x01};
  const Hash32 ds = domain_separator(d), sh = struct_hash(i);
  enc.insert(enc.end(), ds.begin(), ds.end());
  enc.insert(enc.end(), sh.begin(), sh.end());
  return keccak256(enc);
}

}  // namespace vaultrisk::chain
