// Live stress jobs (risk.api.stress).
#include "service/stress_jobs.hpp"

#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/json_fields.hpp"
#include "io/stress_inputs.hpp"
#include "io/stress_report.hpp"
#include "kernels/stress_backend.hpp"
#include "service/api_request.hpp"
#include "service/background_priority.hpp"

namespace vaultrisk::service {

namespace {
using json = nlohmann::json;
constexpr std::int64_t kMaxLivePaths = 1'000'000;
}  // namespace

StressSpec parse_stress_request(std::string_view body, const Book& book, const Market& market) {
  if (body.size() > 1024 * 1024) throw input_error("risk.api.stress: the request is over 1 MiB");
  const json j = io::parse_json(body, "risk.api.stress");
  if (!j.is_object()) throw input_error("risk.api.stress: expected a JSON object");
  StressSpec spec;
  const std::vector<std::string>& unds = book.underlyings;
  if (j.contains("confidence")) {
    if (!j["confidence"].is_number()) throw input_error("risk.api.stress: confidence: must be a number");
    spec.confidence = j["confidence"].get<double>();
    if (!(spec.confidence > 0.0 && spec.confidence < 1.0)) throw input_error("risk.api.stress: confidence: must be in (0, 1)");
  }
  if (j.contains("scenarios")) {
    json named = j;
    named.erase("confidence");
    io::NamedScenarios n = io::parse_named_scenarios(named.dump(), "risk.api.stress", unds);
    spec.source = StressSource::named;
    spec.horizon_days = n.horizon_days;
    spec.table = std::move(n.table);
    return spec;
  }
  if (!j.contains("monte_carlo"))
    throw input_error("risk.api.stress: give \"scenarios\" (named scenarios) or \"monte_carlo\" (a number of paths)");
  io::require_object(j, "risk.api.stress", {"monte_carlo", "horizon_days", "seed", "model", "confidence"});
  const json& n = j["monte_carlo"];
  if (!n.is_number_integer() || n.get<std::int64_t>() < 1 || n.get<std::int64_t>() > kMaxLivePaths)
    throw input_error("risk.api.stress: monte_carlo: the number of paths must be an integer in [1, 1000000]");
  spec.source = StressSource::monte_carlo;
  spec.horizon_days = io::require_number(j, "horizon_days", "risk.api.stress");
  if (!(spec.horizon_days > 0 && spec.horizon_days <= io::kMaxHorizonDays))
    throw input_error("risk.api.stress: horizon_days: must be in (0, 3650]");
  spec.monte_carlo = io::parse_mc_model(j.contains("model") ? j["model"].dump() : "", "risk.api.stress: model", unds,
                                       atm_vols(unds, market, false));
  spec.monte_carlo.paths = n.get<std::int64_t>();
  if (j.contains("seed") && !j["seed"].is_number_unsigned()) throw input_error("risk.api.stress: seed: must be a non-negative integer");
  spec.monte_carlo.seed = j.value("seed", std::uint64_t{1});
  if (!detail::curand_available()) throw unavailable_error("monte_carlo needs cuRAND, and this build has none");
  return spec;
}

StressJobs::~StressJobs() {
  if (thread_.joinable()) thread_.join();
}

std::string StressJobs::start(Book book, Market market, Methodology methodology, StressSpec spec, std::string reply) {
  if (thread_.joinable()) thread_.join();  // the previous job has ended (busy_ was false)
  const std::string job = std::to_string(::getpid()) + "-" + std::to_string(next_++);
  busy_ = true;
  thread_ = std::thread([this, job, book = std::move(book), market = std::move(market),
                         methodology = std::move(methodology), spec = std::move(spec), reply = std::move(reply)] {
    // One core, lowest priority: the engine thread keeps the other and wins any contest.
    lower_this_thread_priority();
    omp_set_num_threads(1);
    const std::string progress_subject = "risk.stress.progress." + job;
    json out;
    try {
      auto last = std::chrono::steady_clock::now() - std::chrono::seconds(1);
      const StressResult r = run_stress(book, market, methodology, spec, Device::cpu, [&](std::int64_t done, std::int64_t total) {
        if (done != total && std::chrono::steady_clock::now() - last < std::chrono::milliseconds(250)) return;
        last = std::chrono::steady_clock::now();
        nats_.publish(progress_subject, json({{"job", job}, {"done", done}, {"total", total}}).dump());
      });
      io::StressRunInfo info;
      info.source = spec.source == StressSource::named ? "named" : "monte-carlo";
      info.confidence = spec.confidence;
      info.horizon_days = spec.horizon_days;
      info.seed = spec.monte_carlo.seed;
      out = json::parse(io::stress_summary_json(r, info));
      out["job"] = job;
      if (spec.source == StressSource::named) {
        json per = json::array();
        for (std::size_t i = 0; i < spec.table.names.size(); ++i)
          per.push_back({{"name", spec.table.names[i]}, {"vault_pnl", r.vault_pnl[i]}, {"bad_debt", r.bad_debt[i]},
                         {"insolvent_accounts", r.insolvent[i]}, {"liquidatable_accounts", r.liquidatable[i]}});
        out["named"] = per;
      }
      busy_ = false;  // before the reply: whoever it reaches may ask for the next job at once
      nats_.publish(reply, out.dump());
    } catch (const std::exception& e) {
      busy_ = false;
      try {
        nats_.publish(reply, json({{"job", job}, {"error", e.what()}}).dump(-1, ' ', false, json::error_handler_t::replace),
                      {{"Nats-Service-Error", "stress job failed"}, {"Nats-Service-Error-Code", "500"}});
      } catch (...) {
      }
    }
    busy_ = false;
  });
  return job;
}

}  // namespace vaultrisk::service
