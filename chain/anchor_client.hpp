// The VaultriskAnchor contract (contracts/VaultriskAnchor.sol) from C++: ABI-encoded
// calls, signed EIP-1559 transactions and receipt confirmation over JSON-RPC.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chain/bytes.hpp"
#include "chain/eip712.hpp"
#include "chain/json_rpc.hpp"
#include "chain/secp256k1.hpp"

namespace vaultrisk::chain {

struct TxReceipt {
  Hash32 tx_hash{};
  std::uint64_t block = 0;
  std::uint64_t gas_used = 0;
  Address contract_address{};  // for a deployment
};

// Signs and sends a transaction from `signer` (nonce from the node's pending count,
// gas from eth_estimateGas plus 20%, fees from the latest base fee), then waits for
// its receipt. A call that would revert fails in the gas estimate, before anything is
// sent: rpc_error with the decoded reason. unavailable_error when the node is
// unreachable or no receipt arrives within receipt_timeout_ms.
TxReceipt send_transaction(JsonRpcClient& rpc, const Signer& signer, const std::optional<Address>& to,
                           const Bytes& data, int receipt_timeout_ms = 30000);

// Deploys the anchor contract with `poster` as the only address allowed to anchor.
TxReceipt deploy_anchor(JsonRpcClient& rpc, const Signer& deployer, const Address& poster);

struct AnchorRecord {
  Hash32 state_root{};
  Hash32 intents_root{};
  std::uint32_t account_count = 0;
  std::uint64_t anchored_at = 0;  // block timestamp; 0: not anchored
};

class AnchorClient {
 public:
  AnchorClient(JsonRpcClient& rpc, const Address& contract) : rpc_(rpc), contract_(contract) {}
  const Address& contract() const { return contract_; }
  std::uint64_t last_epoch();
  Address poster();
  AnchorRecord anchor_of(std::uint64_t epoch);
  TxReceipt anchor(const Signer& poster, std::uint64_t epoch, const Hash32& state_root, const Hash32& intents_root,
                   std::uint32_t account_count, int receipt_timeout_ms = 30000);
  bool verify_account(std::uint64_t epoch, const Hash32& leaf, const std::vector<Hash32>& proof);
  // The signer the contract recovers (zero address for a malformed signature).
  Address verify_intent(const EncodedIntent& intent, const Signature& signature);
  bool verify_intent_included(std::uint64_t epoch, const Hash32& digest, const std::vector<Hash32>& proof);

 private:
  JsonRpcClient& rpc_;
  Address contract_;
};

// ABI pieces, exposed for tests (checked against ethers).
std::array<std::uint8_t, 4> selector(std::string_view signature);
Bytes encode_anchor_call(std::uint64_t epoch, const Hash32& state_root, const Hash32& intents_root,
                         std::uint32_t account_count);
Bytes encode_verify_account_call(std::uint64_t epoch, const Hash32& leaf, const std::vector<Hash32>& proof);
Bytes encode_verify_intent_call(const EncodedIntent& intent, const Signature& signature);
// A revert's data as text: Error(string), the contract's custom errors, or hex.
std::string describe_revert(const Bytes& data);

}  // namespace vaultrisk::chain
