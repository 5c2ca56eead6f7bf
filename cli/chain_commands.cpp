// deploy-anchor, proof, verify-epoch, verify-intent.
#include "cli/chain_commands.hpp"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include <nlohmann/json.hpp>

#include "chain/anchor_artifact.hpp"
#include "chain/anchor_client.hpp"
#include "chain/eip712.hpp"
#include "chain/merkle.hpp"
#include "chain/secp256k1.hpp"
#include "cli/args.hpp"
#include "core/error.hpp"
#include "service/epochs.hpp"
#include "service/nats_client.hpp"

namespace vaultrisk::cli {

namespace {

using json = nlohmann::json;

constexpr const char* kDeployHelp = R"(Usage: vaultrisk deploy-anchor --rpc URL --key FILE [--poster ADDR]

Deploys the anchor contract (contracts/VaultriskAnchor.sol, compiled by the build
with the pinned solc-js) and prints its address as JSON. Pass the address to
'serve --contract': it is both the EIP-712 verifyingContract of the intents and
where epochs are anchored.

  --rpc URL        EVM JSON-RPC endpoint (e.g. anvil's http://127.0.0.1:8545)
  --key FILE       hex secp256k1 key that pays for the deployment
  --poster ADDR    the only address allowed to anchor (default: --key's address;
                   serve sends anchors from --poster-key, else --signing-key)

Example: vaultrisk deploy-anchor --rpc http://127.0.0.1:8545 --key service.key
)";

constexpr const char* kProofHelp = R"(Usage: vaultrisk proof --state-dir DIR --account A [--epoch E] [--rpc URL --contract ADDR]

Prints, as JSON, the Merkle proof of account A's state in epoch E (default: the
latest closed epoch) from serve's state dir: the leaf's values (18-decimal fixed
point, as anchored), its hash, the proof and the state root. With --rpc and
--contract it also asks the anchor contract (verifyAccount) and exits 1 unless the
chain confirms the proof.

Example: vaultrisk proof --state-dir state --account 42 --rpc http://127.0.0.1:8545 --contract 0x...
)";

constexpr const char* kVerifyEpochHelp = R"(Usage: vaultrisk verify-epoch --epoch E [--nats URL] [--rpc URL --contract ADDR]

Rebuilds epoch E's state and intents trees from what the service published to the
JetStream stream EPOCHS (every account's leaf values) and checks the roots: against
the published summary, and with --rpc/--contract against the anchor on-chain.
Exits 1 on any mismatch. Needs nothing from the service but NATS and the chain.

  --nats URL       NATS server (default nats://127.0.0.1:4222)
)";

constexpr const char* kVerifyIntentHelp = R"(Usage: vaultrisk verify-intent (--intent FILE | --seq N [--nats URL]) --rpc URL --contract ADDR [--state-dir DIR]

Checks a liquidation intent as published on sequencer.intent.liquidation (the
JSON body: intent, digest, signature, signer; FILE '-' reads stdin; --seq N reads
message N of the JetStream stream INTENTS instead) on-chain: the
contract recomputes the EIP-712 digest and recovers the signer (verifyIntent).
Exits 1 unless the recovered signer equals the body's signer and the digest
matches. With --state-dir, also proves the intent is in its epoch's anchored
intents root (verifyIntentIncluded), once that epoch has closed.
)";

bool wants_help(const std::vector<std::string>& argv, const char* help) {
  for (const auto& a : argv)
    if (a == "--help" || a == "-h") return std::fputs(help, stdout), true;
  return false;
}

std::string read_all(const std::string& path) {
  if (path == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  std::ifstream f(path);
  if (!f) throw input_error(path + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<chain::Hash32> proof_from_json(const json& p) {
  std::vector<chain::Hash32> out;
  for (const auto& h : p) out.push_back(chain::hash_from_hex(h.get<std::string>()));
  return out;
}

std::uint64_t latest_closed(const service::EpochStore& store, const std::string& dir) {
  const auto all = store.captured();
  for (auto it = all.rbegin(); it != all.rend(); ++it)
    if (store.summary(*it)) return *it;
  throw input_error(dir + ": no closed epoch yet");
}

}  // namespace

int cmd_deploy_anchor(const std::vector<std::string>& argv) {
  if (wants_help(argv, kDeployHelp)) return 0;
  Args args(argv, {"rpc", "key", "poster"}, {});
  const chain::Signer key(chain::read_key_file(args.require("key")));
  const chain::Address poster = args.get("poster") ? chain::address_from_hex(*args.get("poster")) : key.address();
  chain::JsonRpcClient rpc(args.require("rpc"));
  const chain::TxReceipt r = chain::deploy_anchor(rpc, key, poster);
  std::fprintf(stderr, "deployed VaultriskAnchor (%s) at %s in block %llu (gas %llu); poster %s\n", chain::kAnchorCompiler,
               chain::to_hex(r.contract_address).c_str(), static_cast<unsigned long long>(r.block),
               static_cast<unsigned long long>(r.gas_used), chain::to_hex(poster).c_str());
  std::printf("%s\n", json({{"contract", chain::to_hex(r.contract_address)}, {"tx", chain::to_hex(r.tx_hash)},
                            {"block", r.block}, {"gas_used", r.gas_used}, {"poster", chain::to_hex(poster)},
                            {"chain_id", rpc.chain_id()}})
                          .dump()
                          .c_str());
  return 0;
}

int cmd_proof(const std::vector<std::string>& argv) {
  if (wants_help(argv, kProofHelp)) return 0;
  Args args(argv, {"state-dir", "account", "epoch", "rpc", "contract"}, {});
  const std::string dir = args.require("state-dir");
  if (!std::filesystem::is_directory(std::filesystem::path(dir) / "epochs"))
    throw input_error(dir + ": no epochs/ here; is it a 'serve --state-dir'?");
  const service::EpochStore store(dir);
  const std::uint64_t account = args.uint("account", 0, true);
  const std::uint64_t epoch = args.get("epoch") ? args.uint("epoch", 0) : latest_closed(store, dir);
  const service::EpochTrees trees(store.read_capture(epoch));
  auto p = trees.account_proof(account);
  if (!p) throw input_error("account " + std::to_string(account) + " was not in the book at epoch " + std::to_string(epoch));
  if (const auto s = store.summary(epoch)) (*p)["anchor"] = s->value("anchor", json());
  int rc = 0;
  if (args.get("rpc")) {
    chain::JsonRpcClient rpc(args.require("rpc"));
    chain::AnchorClient c(rpc, chain::address_from_hex(args.require("contract")));
    const bool ok = c.verify_account(epoch, chain::hash_from_hex((*p)["leafHash"].get<std::string>()),
                                     proof_from_json((*p)["proof"]));
    (*p)["verifiedOnChain"] = ok;
    std::fprintf(stderr, "account %llu, epoch %llu: %s\n", static_cast<unsigned long long>(account),
                 static_cast<unsigned long long>(epoch),
                 ok ? "proof verified on-chain by verifyAccount" : "NOT verified on-chain (epoch not anchored yet, or roots differ)");
    rc = ok ? 0 : 1;
  }
  std::printf("%s\n", p->dump(2).c_str());
  return rc;
}

int cmd_verify_epoch(const std::vector<std::string>& argv) {
  if (wants_help(argv, kVerifyEpochHelp)) return 0;
  Args args(argv, {"epoch", "nats", "rpc", "contract"}, {});
  const std::uint64_t epoch = args.uint("epoch", 0, true);
  service::NatsClient nats(args.get_or("nats", "nats://127.0.0.1:4222"), "vaultrisk-verify-epoch");
  const auto summary_text = nats.js_get_last(service::kEpochStream, service::epoch_summary_subject(epoch));
  if (!summary_text) throw input_error("epoch " + std::to_string(epoch) + ": no summary in stream EPOCHS (not closed or not published yet)");
  const json summary = json::parse(*summary_text);
  // Every row of every chunk of `field`, as the summary counts them.
  auto read_chunks = [&](const std::string& field, std::uint64_t chunks, auto on_row) {
    for (std::uint64_t k = 0; k < chunks; ++k) {
      const std::string subject = service::epoch_chunk_subject(epoch, field, k);
      const auto text = nats.js_get_last(service::kEpochStream, subject);
      if (!text) throw input_error(subject + ": missing from stream EPOCHS");
      const json chunk = json::parse(*text);  // named: a temporary's member would dangle in the loop
      const json& rows = chunk.at(field);
      for (std::size_t i = 0; i < rows.size(); ++i) on_row(rows[i], subject + "[" + std::to_string(i) + "]");
    }
  };
  auto root_of = [](const std::vector<chain::Hash32>& l) {
    return l.empty() ? chain::Hash32{} : chain::StandardMerkleTree(l).root();
  };
  std::vector<chain::Hash32> leaves, intent_leaves;
  read_chunks("leaves", summary.at("chunks"), [&](const json& row, const std::string& where) {
    leaves.push_back(service::leaf_from_json(epoch, row, where).hash());
  });
  read_chunks("intents", summary.at("intent_chunks"), [&](const json& d, const std::string&) {
    intent_leaves.push_back(chain::intent_leaf(chain::hash_from_hex(d.get<std::string>())));
  });
  const chain::Hash32 state_root = root_of(leaves), intents_root = root_of(intent_leaves);
  bool ok = leaves.size() == summary.at("account_count").get<std::uint64_t>() &&
            intent_leaves.size() == summary.at("intent_count").get<std::uint64_t>() &&
            chain::to_hex(state_root) == summary.at("state_root").get<std::string>() &&
            chain::to_hex(intents_root) == summary.at("intents_root").get<std::string>();
  std::printf("epoch %llu: %zu accounts, %zu intents from stream EPOCHS; rebuilt state root %s, intents root %s: %s the published summary\n",
              static_cast<unsigned long long>(epoch), leaves.size(), intent_leaves.size(), chain::to_hex(state_root).c_str(),
              chain::to_hex(intents_root).c_str(), ok ? "match" : "DO NOT MATCH");
  if (args.get("rpc")) {
    chain::JsonRpcClient rpc(args.require("rpc"));
    chain::AnchorClient c(rpc, chain::address_from_hex(args.require("contract")));
    const chain::AnchorRecord r = c.anchor_of(epoch);
    const bool on_chain = r.anchored_at && r.state_root == state_root && r.intents_root == intents_root &&
                          r.account_count == leaves.size();
    std::printf("on-chain anchor of epoch %llu at %s: %s\n", static_cast<unsigned long long>(epoch),
                chain::to_hex(c.contract()).c_str(),
                !r.anchored_at ? "not anchored yet" : on_chain ? "roots and account count match" : "DIFFERENT roots");
    ok = ok && on_chain;
  }
  return ok ? 0 : 1;
}

int cmd_verify_intent(const std::vector<std::string>& argv) {
  if (wants_help(argv, kVerifyIntentHelp)) return 0;
  Args args(argv, {"intent", "seq", "nats", "rpc", "contract", "state-dir"}, {});
  if (args.get("intent").has_value() == args.get("seq").has_value()) throw usage_error("give one of --intent FILE or --seq N");
  std::string path, text;
  if (args.get("intent")) {
    path = args.require("intent");
    text = read_all(path);
  } else {
    const std::uint64_t seq = args.uint("seq", 0, true);
    path = "stream INTENTS message " + std::to_string(seq);
    service::NatsClient nats(args.get_or("nats", "nats://127.0.0.1:4222"), "vaultrisk-verify-intent");
    const auto m = nats.js_get("INTENTS", seq);
    if (!m) throw input_error(path + ": no such message");
    text = *m;
  }
  json body;
  try {
    body = json::parse(text);
  } catch (const json::exception& e) {
    throw input_error(path + ": not JSON: " + e.what());
  }
  if (!body.is_object() || !body.contains("intent") || !body.contains("signature") || !body.contains("signer") ||
      !body.contains("digest"))
    throw input_error(path + ": expected the published body {intent, digest, signature, signer}");
  const chain::EncodedIntent in = chain::parse_intent_json(body["intent"].dump());
  const auto sig = chain::signature_from_hex(body["signature"].get<std::string>());
  if (!sig) throw input_error(path + ": signature: not 65 bytes of hex");
  const chain::Address signer = chain::address_from_hex(body["signer"].get<std::string>());
  const chain::Hash32 digest = chain::hash_from_hex(body["digest"].get<std::string>());
  chain::JsonRpcClient rpc(args.require("rpc"));
  chain::AnchorClient c(rpc, chain::address_from_hex(args.require("contract")));
  const chain::Address recovered = c.verify_intent(in, *sig);
  const chain::Hash32 local = chain::typed_data_digest(chain::Eip712Domain{rpc.chain_id(), c.contract()}, in);
  bool ok = recovered == signer && local == digest;
  std::printf("verifyIntent on %s recovers %s: %s; digest %s\n", chain::to_hex(c.contract()).c_str(),
              chain::to_hex(recovered).c_str(), recovered == signer ? "the signer" : "NOT the signer",
              local == digest ? "matches" : "differs (another chain or contract?)");
  if (args.get("state-dir")) {
    const service::EpochStore store(args.require("state-dir"));
    if (!store.summary(in.epoch)) {
      std::printf("epoch %llu has not closed yet: inclusion cannot be proved yet\n", static_cast<unsigned long long>(in.epoch));
    } else {
      const service::EpochTrees trees(store.read_capture(in.epoch));
      const auto p = trees.intent_proof(digest);
      const bool included = p && c.verify_intent_included(in.epoch, digest, proof_from_json((*p)["proof"]));
      std::printf("included in epoch %llu's anchored intents root: %s\n", static_cast<unsigned long long>(in.epoch),
                  included ? "yes (verifyIntentIncluded)" : "NO");
      ok = ok && included;
    }
  }
  return ok ? 0 : 1;
}

}  // namespace vaultrisk::cli
