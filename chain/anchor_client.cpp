// Anchor contract calls and transactions.
#include "chain/anchor_client.hpp"

#include <chrono>
#include <thread>

#include "chain/abi_word.hpp"
#include "chain/anchor_artifact.hpp"
#include "chain/keccak.hpp"
#include "chain/transaction.hpp"

namespace vaultrisk::chain {

namespace {

using json = nlohmann::json;

Bytes call_data(std::string_view signature) {
  const auto s = selector(signature);
  return Bytes(s.begin(), s.end());
}

void append_proof(Bytes& out, const std::vector<Hash32>& proof) {
  append(out, Word::from_u64(proof.size()));
  for (const Hash32& h : proof) append(out, Word::from_bytes32(h));
}

Word word_at(const Bytes& b, std::size_t i, const char* what) {
  if (b.size() < (i + 1) * 32) throw rpc_error(std::string(what) + ": short return data", 0, b);
  Word w;
  std::copy(b.begin() + static_cast<std::ptrdiff_t>(i * 32), b.begin() + static_cast<std::ptrdiff_t>(i * 32 + 32), w.be.begin());
  return w;
}

std::uint64_t u64_of(const Word& w) {
  std::uint64_t x = 0;
  for (int i = 24; i < 32; ++i) x = x << 8 | w.be[i];
  return x;
}

Address address_of(const Word& w) {
  Address a;
  std::copy(w.be.begin() + 12, w.be.end(), a.begin());
  return a;
}

Hash32 hash_of(const Word& w) {
  Hash32 h;
  std::copy(w.be.begin(), w.be.end(), h.begin());
  return h;
}

}  // namespace

std::array<std::uint8_t, 4> selector(std::string_view signature) {
  const Hash32 h = keccak256(signature);
  return {h[0], h[1], h[2], h[3]};
}

Bytes encode_anchor_call(std::uint64_t epoch, const Hash32& state_root, const Hash32& intents_root,
                         std::uint32_t account_count) {
  Bytes d = call_data("anchor(uint64,bytes32,bytes32,uint32)");
  append(d, Word::from_u64(epoch));
  append(d, Word::from_bytes32(state_root));
  append(d, Word::from_bytes32(intents_root));
  append(d, Word::from_u64(account_count));
  return d;
}

Bytes encode_verify_account_call(std::uint64_t epoch, const Hash32& leaf, const std::vector<Hash32>& proof) {
  Bytes d = call_data("verifyAccount(uint64,bytes32,bytes32[])");
  append(d, Word::from_u64(epoch));
  append(d, Word::from_bytes32(leaf));
  append(d, Word::from_u64(3 * 32));  // offset of the dynamic array
  append_proof(d, proof);
  return d;
}

Bytes encode_verify_intent_call(const EncodedIntent& in, const Signature& sig) {
  Bytes d = call_data("verifyIntent((uint256,uint64,uint64,uint64,int256,uint256,bytes32),bytes)");
  // The intent tuple is static: encoded in place. Then the offset of `signature`.
  in.append_words(d);
  append(d, Word::from_u64(8 * 32));
  append(d, Word::from_u64(sig.size()));
  Bytes padded(sig.begin(), sig.end());
  padded.resize((sig.size() + 31) / 32 * 32, 0);
  d.insert(d.end(), padded.begin(), padded.end());
  return d;
}

std::string describe_revert(const Bytes& data) {
  if (data.size() < 4) return data.empty() ? "reverted without a reason" : "revert data " + to_hex(data);
  const std::array<std::uint8_t, 4> sel{data[0], data[1], data[2], data[3]};
  const Bytes args(data.begin() + 4, data.end());
  try {
    if (sel == selector("NotPoster(address)"))
      return "NotPoster: " + to_hex(address_of(word_at(args, 0, "NotPoster"))) + " is not the contract's poster";
    if (sel == selector("EpochNotIncreasing(uint64,uint64)"))
      return "EpochNotIncreasing: epoch " + std::to_string(u64_of(word_at(args, 0, "EpochNotIncreasing"))) +
             " is not above the last anchored epoch " + std::to_string(u64_of(word_at(args, 1, "EpochNotIncreasing")));
    if (sel == selector("Error(string)")) {
      const std::uint64_t len = u64_of(word_at(args, 1, "Error"));
      if (args.size() >= 64 + len) return std::string(args.begin() + 64, args.begin() + 64 + static_cast<std::ptrdiff_t>(len));
    }
  } catch (const rpc_error&) {
  }
  return "revert data " + to_hex(data);
}

TxReceipt send_transaction(JsonRpcClient& rpc, const Signer& signer, const std::optional<Address>& to,
                           const Bytes& data, int receipt_timeout_ms) {
  Eip1559Tx tx;
  tx.chain_id = rpc.chain_id();
  tx.to = to;
  tx.data = data;
  try {
    tx.gas_limit = rpc.estimate_gas(signer.address(), to, data) * 6 / 5;
  } catch (const rpc_error& e) {
    throw rpc_error(std::string(e.what()) + (e.data.empty() ? "" : " (" + describe_revert(e.data) + ")"), e.code, e.data);
  }
  tx.nonce = rpc.transaction_count(signer.address());
  tx.max_priority_fee_per_gas = rpc.max_priority_fee();
  tx.max_fee_per_gas = 2 * rpc.base_fee() + tx.max_priority_fee_per_gas;
  const SignedTx signed_tx = sign_transaction(tx, signer);
  const Hash32 sent = rpc.send_raw_transaction(signed_tx.raw);
  if (sent != signed_tx.hash) throw rpc_error("eth_sendRawTransaction: the node reports another hash " + to_hex(sent), 0, {});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(receipt_timeout_ms);
  for (int wait_ms = 20;; wait_ms = std::min(wait_ms * 2, 500)) {
    const json r = rpc.receipt(signed_tx.hash);
    if (!r.is_null()) {
      TxReceipt out;
      out.tx_hash = signed_tx.hash;
      out.block = quantity(r.at("blockNumber"), "receipt blockNumber");
      out.gas_used = quantity(r.at("gasUsed"), "receipt gasUsed");
      if (r.contains("contractAddress") && r["contractAddress"].is_string())
        out.contract_address = address_from_hex(r["contractAddress"].get<std::string>());
      if (quantity(r.at("status"), "receipt status") != 1)
        throw rpc_error("transaction " + to_hex(signed_tx.hash) + " reverted in block " + std::to_string(out.block), 0, {});
      return out;
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw unavailable_error("transaction " + to_hex(signed_tx.hash) + ": no receipt within " +
                              std::to_string(receipt_timeout_ms) + " ms");
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
  }
}

TxReceipt deploy_anchor(JsonRpcClient& rpc, const Signer& deployer, const Address& poster) {
  Bytes code = from_hex(kAnchorBytecode);
  append(code, Word::from_address(poster));
  return send_transaction(rpc, deployer, std::nullopt, code);
}

std::uint64_t AnchorClient::last_epoch() {
  const Bytes r = rpc_.eth_call(contract_, call_data("lastEpoch()"));
  if (r.empty())
    throw rpc_error("no contract answers at " + to_hex(contract_) + " on " + rpc_.url() +
                        ": is it the address deploy-anchor printed, on this chain?",
                    0, {});
  return u64_of(word_at(r, 0, "lastEpoch"));
}

Address AnchorClient::poster() { return address_of(word_at(rpc_.eth_call(contract_, call_data("poster()")), 0, "poster")); }

AnchorRecord AnchorClient::anchor_of(std::uint64_t epoch) {
  Bytes d = call_data("anchors(uint64)");
  append(d, Word::from_u64(epoch));
  const Bytes r = rpc_.eth_call(contract_, d);
  return AnchorRecord{hash_of(word_at(r, 0, "anchors")), hash_of(word_at(r, 1, "anchors")),
                      static_cast<std::uint32_t>(u64_of(word_at(r, 2, "anchors"))), u64_of(word_at(r, 3, "anchors"))};
}

TxReceipt AnchorClient::anchor(const Signer& poster, std::uint64_t epoch, const Hash32& state_root,
                               const Hash32& intents_root, std::uint32_t account_count, int receipt_timeout_ms) {
  return send_transaction(rpc_, poster, contract_, encode_anchor_call(epoch, state_root, intents_root, account_count),
                          receipt_timeout_ms);
}

bool AnchorClient::verify_account(std::uint64_t epoch, const Hash32& leaf, const std::vector<Hash32>& proof) {
  return u64_of(word_at(rpc_.eth_call(contract_, encode_verify_account_call(epoch, leaf, proof)), 0, "verifyAccount")) != 0;
}

Address AnchorClient::verify_intent(const EncodedIntent& intent, const Signature& signature) {
  return address_of(word_at(rpc_.eth_call(contract_, encode_verify_intent_call(intent, signature)), 0, "verifyIntent"));
}

bool AnchorClient::verify_intent_included(std::uint64_t epoch, const Hash32& digest, const std::vector<Hash32>& proof) {
  Bytes d = call_data("verifyIntentIncluded(uint64,bytes32,bytes32[])");
  append(d, Word::from_u64(epoch));
  append(d, Word::from_bytes32(digest));
  append(d, Word::from_u64(3 * 32));
  append_proof(d, proof);
  return u64_of(word_at(rpc_.eth_call(contract_, d), 0, "verifyIntentIncluded")) != 0;
}

}  // namespace vaultrisk::chain
