// Distributed stress (SPEC §8, `stress --workers`): a coordinator splits a run into
// groups of detail::kStressGroupAccounts accounts on the JetStream work queue STRESS;
// `vaultrisk stress-worker` processes pull them, run their group and publish the
// result to STRESS_RESULTS before they ack. A worker killed mid-group loses nothing:
// the group is redelivered after the ack wait. The coordinator merges the groups in
// account order, which gives the same bits as a single process (merge_stress).
//
// The inputs travel over NATS too (stream STRESS_DATA, in parts of 512 KiB): the
// book, market and methodology as vaultrisk writes them (exact round trips), and the
// scenario spec. A worker needs nothing but the NATS URL.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "kernels/stress.hpp"

namespace vaultrisk::service {

using StressLog = std::function<void(const std::string&)>;

// Runs `spec` on whatever workers serve `url`; progress counts groups done.
StressResult run_stress_on_workers(const std::string& url, const Book& book, const Market& market,
                                   const Methodology& methodology, const StressSpec& spec,
                                   const StressProgress& progress, const StressLog& log, int timeout_s);

struct WorkerOptions {
  Device device = Device::automatic;
  int ack_wait_s = 30;  // a group unacked this long (no progress either) goes to another worker
};
// Serves groups until `stop`. Bad input in a job is reported to its coordinator.
int run_stress_worker(const std::string& url, const WorkerOptions& options, const StressLog& log, std::atomic<bool>& stop);

// The scenario spec and a part's result as they travel (exposed for tests).
std::string spec_to_json(const StressSpec& spec);
StressSpec spec_from_json(const std::string& text);
std::string part_to_bytes(const StressResult& part);
StressResult part_from_bytes(const std::string& bytes);

}  // namespace vaultrisk::service
