// A cluster instance (SPEC §9): `vaultrisk serve --partitions P --instance NAME`.
//
// Accounts fall into P partitions (service/partitions.hpp). Each partition has one
// owner at a time, by lease: key partition.<k> of the JetStream key-value bucket
// VAULTRISK_LEASES, whose entries expire --lease-ms after their last renewal. An
// instance renews its leases eight times per lease period; one that stops renewing
// (killed, cut off) loses them, and the other live instances take them over,
// rebuilding each partition from NATS alone (service/partition_snapshot.hpp plus a
// replay of VAULT). Instances balance: each aims at ceil(P / live instances).
//
// Each owned partition runs as a worker (run_partition, service/risk_service.cpp)
// on its own thread and NATS connection. The instance routes risk.api.account to the
// owner of the account's partition, answers risk.api.health and the micro service
// discovery, hands out its signer's nonces (reserved in blocks in the bucket
// VAULTRISK_CLUSTER, so they never repeat, whichever machine the instance runs on),
// and, while it holds the lease "anchorer", joins every partition's share of each
// epoch into one state root and anchors it (service/epoch_anchorer.hpp).
#pragma once

#include <atomic>

#include "service/risk_service.hpp"

namespace vaultrisk::service {

inline constexpr const char* kLeaseBucket = "VAULTRISK_LEASES";
inline constexpr const char* kClusterBucket = "VAULTRISK_CLUSTER";

// Runs until `stop`; returns the exit code. Leases are handed back on a clean stop.
int run_cluster(const ServeConfig& config, std::atomic<bool>& stop);

}  // namespace vaultrisk::service
