// Emits random signed LiquidationIntents and personal messages as JSON for
// tests/js/verify_intents.mjs (ethers) to verify independently.
#include <cstdio>
#include <random>
#include <string>

#include "chain/anchor_client.hpp"
#include "chain/eip712.hpp"
#include "chain/keccak.hpp"
#include "chain/merkle.hpp"
#include "chain/secp256k1.hpp"
#include "chain/transaction.hpp"

using namespace vaultrisk::chain;

int main() {
  std::mt19937_64 rng(2026);
  std::uniform_real_distribution<double> u(0, 1);
  std::string out = "{\"intents\": [";
  for (int k = 0; k < 200; ++k) {
    Bytes key(32);
    for (auto& b : key) b = static_cast<std::uint8_t>(rng());
    key[0] &= 0x7f;  // below the curve order
    const Signer signer(to_hex(key));
    Eip712Domain d;
    d.chain_id = k % 3 == 0 ? 1 : 31337 + k;
    for (auto& b : d.verifying_contract) b = static_cast<std::uint8_t>(rng());
    LiquidationIntent i;
    i.account = k % 5 == 0 ? 18446744073709551615ull : rng();
    i.nonce = rng() >> (k % 64);
    i.deadline = 1767225600 + rng() % 100000;
    i.epoch = rng() % 1000000;
    const double mags[] = {1e-12, 0.1, 1.5, 1234.5678, 9.87e9, 3.3e15};
    i.equity = (u(rng) < 0.5 ? -1 : 1) * mags[k % 6] * u(rng);
    i.maintenance_margin = mags[(k + 3) % 6] * u(rng);
    for (auto& b : i.market_digest) b = static_cast<std::uint8_t>(rng());
    const Hash32 digest = typed_data_digest(d, i);
    const Signature sig = signer.sign(digest);
    char buf[2048];
    std::snprintf(buf, sizeof buf,
                  "%s{\"domain\": {\"chainId\": \"%llu\", \"verifyingContract\": \"%s\"}, \"intent\": {\"account\": \"%llu\", "
                  "\"nonce\": \"%llu\", \"deadline\": \"%llu\", \"epoch\": \"%llu\", \"equity\": \"%s\", "
                  "\"maintenanceMargin\": \"%s\", \"marketDigest\": \"%s\"}, \"digest\": \"%s\", \"signature\": \"%s\", "
                  "\"signer\": \"%s\"}",
                  k ? ", " : "", static_cast<unsigned long long>(d.chain_id), to_hex(d.verifying_contract).c_str(),
                  static_cast<unsigned long long>(i.account), static_cast<unsigned long long>(i.nonce),
                  static_cast<unsigned long long>(i.deadline), static_cast<unsigned long long>(i.epoch),
                  Word::fixed18(i.equity).decimal(true).c_str(), Word::fixed18(i.maintenance_margin).decimal(false).c_str(),
                  to_hex(i.market_digest).c_str(), to_hex(digest).c_str(), to_hex(sig).c_str(),
                  to_hex(signer.address()).c_str());
    out += buf;
  }
  out += "], \"messages\": [";
  const Signer oracle("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318");
  for (int k = 0; k < 50; ++k) {
    const std::string body = "{\"underlying\":\"BTC\",\"seq\":" + std::to_string(k) + ",\"spot\":97000.5}";
    const Signature sig = oracle.sign(personal_message_hash(body));
    std::string escaped;
    for (char c : body) escaped += c == '"' ? std::string("\\\"") : std::string(1, c);
    out += (k ? ", " : "") + std::string("{\"message\": \"") + escaped + "\", \"signature\": \"" + to_hex(sig) +
           "\", \"signer\": \"" + to_hex(oracle.address()) + "\"}";
  }
  out += "], \"trees\": [";
  // State trees of several sizes: values, our root, and proofs of a few leaves.
  const std::size_t sizes[] = {1, 2, 3, 4, 7, 100, 1000};
  for (std::size_t t = 0; t < sizeof sizes / sizeof *sizes; ++t) {
    const std::uint64_t epoch = 1 + t;
    std::vector<Hash32> leaves;
    std::string values = "[";
    for (std::size_t k = 0; k < sizes[t]; ++k) {
      const std::uint64_t account = rng() >> (k % 40);
      const double equity = (u(rng) - 0.3) * 1e6, mm = u(rng) * 1e5, im = mm * 1.25;
      const auto status = static_cast<std::uint8_t>(rng() % 3);
      leaves.push_back(state_leaf(epoch, account, equity, mm, im, status));
      values += (k ? ",[\"" : "[\"") + std::to_string(epoch) + "\",\"" + std::to_string(account) + "\",\"" +
                Word::fixed18(equity).decimal(true) + "\",\"" + Word::fixed18(mm).decimal(false) + "\",\"" +
                Word::fixed18(im).decimal(false) + "\"," + std::to_string(status) + "]";
    }
    values += "]";
    const StandardMerkleTree tree(leaves);
    std::string proofs = "[";
    for (std::size_t k = 0; k < sizes[t]; k += 1 + sizes[t] / 5) {
      proofs += proofs.size() > 1 ? ",{\"index\":" : "{\"index\":";
      proofs += std::to_string(k) + ",\"leaf\":\"" + to_hex(leaves[k]) + "\",\"proof\":[";
      const auto pr = tree.proof(leaves[k]);
      for (std::size_t j = 0; j < pr.size(); ++j) proofs += (j ? ",\"" : "\"") + to_hex(pr[j]) + "\"";
      proofs += "]}";
    }
    proofs += "]";
    out += (t ? ",{\"values\":" : "{\"values\":") + values + ",\"root\":\"" + to_hex(tree.root()) + "\",\"proofs\":" + proofs + "}";
  }
  // Signed EIP-1559 transactions (RLP) and the anchor contract's calldata.
  out += "], \"transactions\": [";
  for (int k = 0; k < 60; ++k) {
    Bytes key(32);
    for (auto& b : key) b = static_cast<std::uint8_t>(rng());
    key[0] &= 0x7f;
    const Signer signer(to_hex(key));
    Eip1559Tx tx;
    tx.chain_id = k % 4 == 0 ? 1 : 31337 + static_cast<std::uint64_t>(k);
    tx.nonce = k % 7 == 0 ? 0 : rng() >> (11 + k % 50);  // ethers holds nonces as JS numbers: below 2^53
    tx.max_priority_fee_per_gas = k % 5 == 0 ? 0 : rng() >> 30;
    tx.max_fee_per_gas = tx.max_priority_fee_per_gas + (rng() >> 20);
    tx.gas_limit = 21000 + rng() % 10000000;
    tx.value = k % 3 == 0 ? 0 : rng();
    if (k % 6 != 5) {
      Address to;
      for (auto& b : to) b = static_cast<std::uint8_t>(rng());
      tx.to = to;
    }
    tx.data.resize(k % 4 == 0 ? 0 : rng() % (k % 2 ? 60 : 300));
    for (auto& b : tx.data) b = static_cast<std::uint8_t>(rng());
    const SignedTx st = sign_transaction(tx, signer);
    out += std::string(k ? ", " : "") + "{\"raw\": \"" + to_hex(st.raw) + "\", \"hash\": \"" + to_hex(st.hash) +
           "\", \"from\": \"" + to_hex(signer.address()) + "\", \"chainId\": \"" + std::to_string(tx.chain_id) +
           "\", \"nonce\": \"" + std::to_string(tx.nonce) + "\", \"maxPriorityFeePerGas\": \"" +
           std::to_string(tx.max_priority_fee_per_gas) + "\", \"maxFeePerGas\": \"" + std::to_string(tx.max_fee_per_gas) +
           "\", \"gasLimit\": \"" + std::to_string(tx.gas_limit) + "\", \"to\": " +
           (tx.to ? "\"" + to_hex(*tx.to) + "\"" : std::string("null")) + ", \"value\": \"" + std::to_string(tx.value) +
           "\", \"data\": \"" + to_hex(tx.data) + "\", \"createAddress\": \"" + to_hex(create_address(signer.address(), tx.nonce)) + "\"}";
  }
  out += "], \"calls\": [";
  for (int k = 0; k < 20; ++k) {
    Hash32 a, b;
    for (auto& x : a) x = static_cast<std::uint8_t>(rng());
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    const std::uint64_t epoch = rng() >> (k * 3 % 64);
    const auto count = static_cast<std::uint32_t>(rng());
    std::vector<Hash32> proof(static_cast<std::size_t>(k % 6));
    std::string proof_json = "[";
    for (std::size_t j = 0; j < proof.size(); ++j) {
      for (auto& x : proof[j]) x = static_cast<std::uint8_t>(rng());
      proof_json += (j ? ",\"" : "\"") + to_hex(proof[j]) + "\"";
    }
    proof_json += "]";
    EncodedIntent in;
    in.account = rng();
    in.nonce = rng();
    in.deadline = rng();
    in.epoch = epoch;
    in.equity = Word::fixed18((u(rng) - 0.5) * 1e7);
    in.maintenance_margin = Word::fixed18(u(rng) * 1e7);
    in.market_digest = a;
    Signature sig;
    for (auto& x : sig) x = static_cast<std::uint8_t>(rng());
    out += std::string(k ? ", " : "") + "{\"epoch\": \"" + std::to_string(epoch) + "\", \"a\": \"" + to_hex(a) +
           "\", \"b\": \"" + to_hex(b) + "\", \"count\": " + std::to_string(count) + ", \"proof\": " + proof_json +
           ", \"intent\": [\"" + std::to_string(in.account) + "\", \"" + std::to_string(in.nonce) + "\", \"" +
           std::to_string(in.deadline) + "\", \"" + std::to_string(in.epoch) + "\", \"" + in.equity.decimal(true) +
           "\", \"" + in.maintenance_margin.decimal(false) + "\", \"" + to_hex(in.market_digest) + "\"], \"signature\": \"" +
           to_hex(sig) + "\", \"anchor\": \"" + to_hex(encode_anchor_call(epoch, a, b, count)) + "\", \"verifyAccount\": \"" +
           to_hex(encode_verify_account_call(epoch, a, proof)) + "\", \"verifyIntent\": \"" +
           to_hex(encode_verify_intent_call(in, sig)) + "\"}";
  }
  out += "]}\n";
  std::fputs(out.c_str(), stdout);
}
