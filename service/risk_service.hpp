// The always-on service (SPEC §6–7): signed oracle ticks and JetStream vault events
// in; incremental revaluation; status-change alerts, signed liquidation intents,
// rejects, a NATS micro-service API and Prometheus metrics out; durable state.
#pragma once

#include "service/nats_client.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "kernels/engine.hpp"

namespace vaultrisk::service {

struct ServeConfig {
  std::string nats_url = "nats://127.0.0.1:4222";
  std::string book_dir;      // initial book (used only when the state dir holds none)
  std::string market_file;   // initial market (until ticks arrive)
  std::string config_file;   // methodology
  std::string state_dir = "vaultrisk-state";
  bool fresh_state = false;  // set a damaged state dir aside and start from --book (nonces and epochs kept)
  std::vector<std::string> oracle_signers;
  std::string signing_key_file;
  std::uint64_t chain_id = 31337;
  std::string verifying_contract = "0x0000000000000000000000000000000000000000";  // also the anchor contract
  std::string rpc_url;          // EVM JSON-RPC for anchoring; empty: epochs are not anchored
  std::string poster_key_file;  // key that sends anchor transactions; empty: the signing key
  int rpc_timeout_ms = 5000;
  std::int64_t intent_ttl_s = 60;
  std::int64_t max_tick_age_ms = 10000;
  int metrics_port = 9464;   // -1: off, 0: any free port
  std::string metrics_bind = "127.0.0.1";  // address the /metrics listener binds (0.0.0.0: all)
  NatsSecurity nats_security;
  Device device = Device::automatic;
  // Accounts valued apart from the layout before a background layout folds them in
  // (LiveEngineOptions): this many, or the oldest apart this long.
  std::uint64_t merge_accounts = 4096;
  double merge_after_s = 30;
  std::int64_t epoch_seconds = 60;
  std::uint64_t snapshot_every = 10000;  // vault events between snapshots (also by WAL size and time)
  // Retention of the streams the service publishes to, in days (0: kept for ever).
  // EPOCHS grows by ~90 MB an epoch at 1M accounts; anchored roots stay on-chain and
  // the state dir keeps every capture, so old leaves can be republished from there.
  std::uint64_t epochs_max_age_days = 30;
  std::uint64_t intents_max_age_days = 30;
  bool quiet = false;

  // Cluster (SPEC §9; service/cluster.cpp). partitions == 0: a single instance,
  // exactly as without these fields.
  std::uint32_t partitions = 0;
  std::string instance;         // this instance's name (unique in the cluster)
  int lease_ms = 2000;          // an owner that stops renewing loses its partitions after this
  int snapshot_ms = 2000;       // a partition's state goes to NATS at most this often
  int replicas = 1;             // of every stream and bucket the service creates (3 on a 3-node cluster)
};

class Metrics;

// Intents of one signer, shared by the partitions an instance owns: each gets the
// next nonce (strictly increasing, never repeated) and goes out on one connection
// under one lock, so that stream INTENTS holds a signer's intents in nonce order.
class NonceSource {
 public:
  virtual ~NonceSource() = default;
  // `sign` builds the intent for the nonce it is given: {body, Nats-Msg-Id}.
  virtual void publish_intent(const std::function<std::pair<std::string, std::string>(std::uint64_t nonce)>& sign) = 0;
  // Every intent published so far is stored by JetStream (throws after timeout_ms).
  virtual void wait(int timeout_ms) = 0;
};

// What makes a Service one partition's worker inside a cluster instance.
struct PartitionRole {
  std::uint32_t partition = 0, partitions = 1;
  Metrics* metrics = nullptr;    // the instance's
  NonceSource* nonces = nullptr;  // the instance signer's
  std::function<bool()> owned;    // false once the lease may have passed to another instance
  std::function<void(double seconds, std::uint64_t alerts)> ready;  // the first evaluation after start
};

// One partition's worker, until `stop` or until the lease is lost; returns the exit code.
int run_partition(const ServeConfig& config, const PartitionRole& role, std::atomic<bool>& stop);

// Runs until `stop` becomes true; returns the process exit code.
int run_service(const ServeConfig& config, std::atomic<bool>& stop);

}  // namespace vaultrisk::service
