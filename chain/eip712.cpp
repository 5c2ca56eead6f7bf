// EIP-712 encoding.
#include "chain/eip712.hpp"

#include <nlohmann/json.hpp>

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

EncodedIntent EncodedIntent::from(const LiquidationIntent& i) {
  if (i.maintenance_margin < 0) throw input_error("maintenanceMargin must not be negative");
  return EncodedIntent{i.account, i.nonce, i.deadline, i.epoch, Word::fixed18(i.equity),
                       Word::fixed18(i.maintenance_margin), i.market_digest};
}

EncodedIntent parse_intent_json(std::string_view text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw input_error(std::string("intent: not JSON: ") + e.what());
  }
  if (!j.is_object()) throw input_error("intent: expected an object");
  auto field = [&](const char* name) -> std::string {
    if (!j.contains(name) || !j[name].is_string())
      throw input_error(std::string("intent.") + name + ": missing or not a string");
    return j[name].get<std::string>();
  };
  auto u64 = [&](const char* name) {
    const Word w = Word::from_decimal(field(name), false, std::string("intent.") + name);
    for (int b = 0; b < 24; ++b)
      if (w.be[b]) throw input_error(std::string("intent.") + name + ": does not fit uint64");
    std::uint64_t x = 0;
    for (int b = 24; b < 32; ++b) x = x << 8 | w.be[b];
    return x;
  };
  EncodedIntent i;
  i.account = u64("account");
  i.nonce = u64("nonce");
  i.deadline = u64("deadline");
  i.epoch = u64("epoch");
  i.equity = Word::from_decimal(field("equity"), true, "intent.equity");
  i.maintenance_margin = Word::from_decimal(field("maintenanceMargin"), false, "intent.maintenanceMargin");
  i.market_digest = hash_from_hex(field("marketDigest"));
  return i;
}

Hash32 struct_hash(const LiquidationIntent& i) { return struct_hash(EncodedIntent::from(i)); }

void EncodedIntent::append_words(Bytes& out) const {
  append(out, Word::from_u64(account));
  append(out, Word::from_u64(nonce));
  append(out, Word::from_u64(deadline));
  append(out, Word::from_u64(epoch));
  append(out, equity);
  append(out, maintenance_margin);
  append(out, Word::from_bytes32(market_digest));
}

Hash32 struct_hash(const EncodedIntent& i) {
  Bytes enc;
  append(enc, Word::from_bytes32(keccak256(kLiquidationIntentType)));
  i.append_words(enc);
  return keccak256(enc);
}

Hash32 typed_data_digest(const Eip712Domain& d, const LiquidationIntent& i) {
  return typed_data_digest(d, EncodedIntent::from(i));
}

Hash32 typed_data_digest(const Eip712Domain& d, const EncodedIntent& i) {
  Bytes enc{0x19, 0x01};
  const Hash32 ds = domain_separator(d), sh = struct_hash(i);
  enc.insert(enc.end(), ds.begin(), ds.end());
  enc.insert(enc.end(), sh.begin(), sh.end());
  return keccak256(enc);
}

}  // namespace vaultrisk::chain
