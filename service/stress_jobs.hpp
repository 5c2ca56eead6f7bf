// risk.api.stress: SPEC §8 stress against the live book and market, as a job. The
// request is answered with the summary when the job ends; meanwhile progress goes
// out on risk.stress.progress.<job>. A job runs on its own thread, on one core at
// the lowest scheduling priority, from a copy of the book and market taken on the
// engine thread, so it never holds up ticks. One job at a time.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "kernels/book.hpp"
#include "kernels/market.hpp"
#include "kernels/methodology.hpp"
#include "kernels/stress.hpp"
#include "service/nats_client.hpp"

namespace vaultrisk::service {

// The request body: a named-scenario file's JSON ({"horizon_days", "scenarios"}), or
// {"monte_carlo": N, "horizon_days": H, "seed": S, "model": {...}} (model as in a
// --model file); either may add "confidence". Throws input_error naming the field.
StressSpec parse_stress_request(std::string_view body, const Book& book, const Market& market);

class StressJobs {
 public:
  explicit StressJobs(NatsClient& nats) : nats_(nats) {}
  ~StressJobs();
  StressJobs(const StressJobs&) = delete;
  StressJobs& operator=(const StressJobs&) = delete;

  bool busy() const { return busy_; }
  // Starts a job; the reply goes to `reply` when it ends. Returns the job id.
  std::string start(Book book, Market market, Methodology methodology, StressSpec spec, std::string reply);

 private:
  NatsClient& nats_;
  std::atomic<bool> busy_{false};
  std::thread thread_;
  std::uint64_t next_ = 1;
};

}  // namespace vaultrisk::service
