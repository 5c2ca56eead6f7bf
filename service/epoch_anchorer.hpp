// The epoch pipeline after an epoch closes, on its own thread so the tick path never
// waits for hashing or the chain: build the trees, persist the roots, publish the
// leaves to JetStream EPOCHS, anchor the roots on-chain. Strictly in epoch order;
// an epoch that cannot be anchored (chain down) holds back the ones after it, and
// everything not yet done is picked up again after a restart from the state dir.
// Also answers risk.api.proof, on a second thread so that a slow chain never
// delays a proof.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "chain/bytes.hpp"
#include "chain/secp256k1.hpp"
#include "service/epochs.hpp"

namespace vaultrisk::service {

class NatsClient;
class Metrics;

struct AnchorSettings {
  std::string rpc_url;  // empty: publish epochs, anchor none (they stay queued in the state dir)
  chain::Address contract{};
  std::shared_ptr<const chain::Signer> poster;
  std::uint64_t chain_id = 31337;  // the intents' EIP-712 domain: checked against the chain's
  int rpc_timeout_ms = 5000;
  int receipt_timeout_ms = 30000;
  // A cluster's anchorer (SPEC §9) that took over may hold an epoch the chain has
  // already passed (the previous anchorer skipped it): it is recorded as skipped
  // instead of stopping the pipeline.
  bool skip_passed = false;
};

class EpochAnchorer {
 public:
  using Log = std::function<void(const std::string&)>;
  EpochAnchorer(EpochStore& store, NatsClient& nats, Metrics& metrics, AnchorSettings settings, Log log);
  ~EpochAnchorer();

  // Queues every captured epoch below `open_epoch` that is not finished yet, and starts.
  void start(std::uint64_t open_epoch);
  // The engine thread closed an epoch (its capture is already durable).
  void closed(EpochCapture capture);
  // risk.api.proof: {"account": A, "epoch": E (optional: the latest closed)}.
  void request_proof(std::string reply_subject, std::string body);
  void stop();
  // For health: last anchored epoch, epochs waiting, last error.
  nlohmann::json status() const;
  // Called on the proof thread for each proof request answered with an error, and
  // with each request's processing time (the micro service's endpoint statistics).
  std::function<void(const std::string&)> on_proof_error;
  std::function<void(std::uint64_t nanos)> on_proof_served;

 private:
  void loop();
  void proof_loop();
  // Builds and persists the roots, then publishes the leaves; returns the summary.
  nlohmann::json prepare(std::uint64_t epoch);
  // Sends the anchor transaction (or finds it already on-chain) and records it.
  void anchor(std::uint64_t epoch, nlohmann::json summary);
  std::shared_ptr<const EpochTrees> proof_trees(std::uint64_t epoch);  // proof thread
  void serve_proof(const std::string& reply, const std::string& body);
  void failed(const std::string& what);

  EpochStore& store_;
  NatsClient& nats_;
  Metrics& metrics_;
  AnchorSettings settings_;
  Log log_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::uint64_t> queue_;
  std::map<std::uint64_t, EpochCapture> fresh_;  // captures handed over in memory
  std::uint64_t last_closed_ = 0, last_anchored_ = 0;
  std::string last_error_;
  std::atomic<bool> stop_{false};
  std::thread thread_, proof_thread_;

  // Pipeline thread only.
  std::map<std::uint64_t, nlohmann::json> prepared_;  // summaries of queued epochs
  int failures_ = 0;
  bool chain_checked_ = false;

  // Proof thread.
  std::mutex proof_mu_;
  std::condition_variable proof_cv_;
  std::deque<std::pair<std::string, std::string>> proofs_;
  std::map<std::uint64_t, std::shared_ptr<const EpochTrees>> cache_;  // the two newest epochs asked for
};

}  // namespace vaultrisk::service
