// `vaultrisk stress`: batch stress, VaR and ES over named, historical or Monte
// Carlo scenarios (SPEC §8), with a progress bar and report.html.
#include "cli/stress_command.hpp"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "cli/common.hpp"
#include "core/error.hpp"
#include "io/csv_reader.hpp"
#include "io/methodology_json.hpp"
#include "io/stress_inputs.hpp"
#include "io/stress_report.hpp"
#include "kernels/stress.hpp"
#include "kernels/stress_backend.hpp"
#include "service/stress_work.hpp"

namespace vaultrisk::cli {
namespace {

constexpr const char* kStressHelp = R"(Usage: vaultrisk stress --book DIR --market FILE --out DIR SCENARIOS [options]

Revalues every position of every account in full under each scenario (SPEC §8):
each option is repriced at its shocked spot, vol and horizon. Writes
scenarios.csv, accounts.csv, summary.json and report.html into --out.

SCENARIOS, exactly one of:
  --scenarios FILE            named joint scenarios (JSON); also runs the §4 margin
                              at each shocked market (statuses, liquidatable counts)
  --history FILE --horizon-days H [--filtered]
                              historical simulation from `date,underlying,spot,atm_vol`
                              rows; H is in rows of the file; --filtered rescales
                              each move to today's ATM vol
  --monte-carlo N --horizon-days H --seed S [--model FILE]
                              N correlated paths from cuRAND's Philox generator
                              (the same scenarios on CPU and GPU for a seed)

Options:
  --book DIR        book folder (instruments.csv, accounts.csv, positions.csv)
  --market FILE     today's market snapshot (JSON)
  --out DIR         output folder (created if missing; files written atomically)
  --confidence A    VaR/ES confidence in (0, 1) (default 0.99)
  --config FILE     margin methodology for named scenarios (default: SPEC §4)
  --device D        auto (GPU when present, default), cpu or gpu
  --workers URL     split the accounts into groups on the JetStream work queue
                    STRESS of this NATS server and merge what `vaultrisk
                    stress-worker` processes return (the same bits as one process)
  --timeout S       with --workers: give up after S seconds (default 3600)
  --quiet           no log lines or progress, errors only

Example:
  vaultrisk stress --book book --market book/market.json --monte-carlo 10000 \
    --horizon-days 1 --seed 7 --out stress
)";

// "scenarios 4096/10000  1234/s  ETA 5s" on one line of a terminal; a log line per
// quarter otherwise.
class Progress {
 public:
  Progress(const Log& log) : log_(log), tty_(::isatty(STDERR_FILENO) && !log.quiet) {}
  void operator()(std::int64_t done, std::int64_t total) {
    if (log_.quiet) return;
    const double s = ms_since(start_) / 1000.0;
    const double rate = s > 0 ? static_cast<double>(done) / s : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0.0;
    if (tty_) {
      const int width = 30, filled = static_cast<int>(width * done / std::max<std::int64_t>(1, total));
      std::fprintf(stderr, "\r  [%.*s%*s] scenarios %lld/%lld  %.0f/s  ETA %.0fs ", filled,
                   "##############################", width - filled, "", static_cast<long long>(done),
                   static_cast<long long>(total), rate, eta);
      if (done == total) std::fputc('\n', stderr);
    } else {
      const int quarter = static_cast<int>(4 * done / std::max<std::int64_t>(1, total));
      if (quarter != last_quarter_ || done == total)
        log_("scenarios %lld/%lld (%.0f/s, ETA %.0f s)", static_cast<long long>(done), static_cast<long long>(total), rate, eta);
      last_quarter_ = quarter;
    }
  }

 private:
  const Log& log_;
  bool tty_;
  Clock::time_point start_ = Clock::now();
  int last_quarter_ = 0;
};

double number_arg(const Args& args, const std::string& name, double fallback) {
  const auto v = args.get(name);
  if (!v) return fallback;
  std::size_t used = 0;
  double x = 0;
  try {
    x = std::stod(*v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v->size() || !std::isfinite(x)) throw usage_error("--" + name + ": expected a number, got '" + *v + "'");
  return x;
}

}  // namespace

int cmd_stress(const std::vector<std::string>& argv) {
  if (wants_help(argv)) return std::fputs(kStressHelp, stdout), 0;
  Args args(argv,
            {"book", "market", "out", "scenarios", "history", "horizon-days", "monte-carlo", "seed", "model",
             "confidence", "config", "device", "workers", "timeout"},
            {"filtered", "quiet"});
  Log log{args.flag("quiet")};
  const int sources = (args.get("scenarios") ? 1 : 0) + (args.get("history") ? 1 : 0) + (args.get("monte-carlo") ? 1 : 0);
  if (sources != 1) throw usage_error("give exactly one of --scenarios, --history or --monte-carlo");
  if (args.flag("filtered") && !args.get("history")) throw usage_error("--filtered goes with --history");
  const Device device = device_arg(args);
  const std::filesystem::path out = args.require("out");

  StressSpec spec;
  spec.confidence = number_arg(args, "confidence", 0.99);
  if (!(spec.confidence > 0.0 && spec.confidence < 1.0))
    throw input_error("--confidence: " + *args.get("confidence") + " is outside (0, 1)");
  Methodology methodology = default_methodology();
  if (auto cfg = args.get("config")) methodology = io::load_methodology(*cfg);
  const Loaded in = load_inputs(args, log);
  const std::vector<std::string>& unds = in.book.underlyings;
  for (const std::string& u : unds)
    if (!in.market.underlyings.count(u)) throw input_error("market: underlyings: '" + u + "' is missing (the book holds it)");
  io::StressRunInfo info;
  if (auto f = args.get("scenarios")) {
    if (args.get("horizon-days")) throw usage_error("--horizon-days goes with --history or --monte-carlo (a scenario file has its own)");
    io::NamedScenarios named = io::load_named_scenarios(*f, unds);
    spec.source = StressSource::named;
    spec.horizon_days = named.horizon_days;
    spec.table = std::move(named.table);
    info.source = "named";
    info.inputs = "Named scenarios from " + *f;
  } else {
    const double h = number_arg(args, "horizon-days", NAN);
    if (!args.get("horizon-days")) throw usage_error("--horizon-days is required with --history and --monte-carlo");
    if (!(h > 0 && h <= io::kMaxHorizonDays)) throw input_error("--horizon-days: must be in (0, 3650]");
    spec.horizon_days = h;
    if (auto f = args.get("history")) {
      if (h != std::floor(h)) throw input_error("--horizon-days: must be a whole number of rows for --history");
      const bool filtered = args.flag("filtered");
      spec.source = StressSource::history;
      spec.table = io::load_history(*f, unds, static_cast<std::int64_t>(h), filtered,
                                    filtered ? atm_vols(unds, in.market, true) : std::vector<double>(unds.size(), NAN));
      info.source = filtered ? "history (filtered)" : "history";
      info.inputs = "Historical simulation from " + *f;
    } else {
      if (!detail::curand_available())
        throw unavailable_error("--monte-carlo needs cuRAND (libcurand from the CUDA toolkit), and this build has none");
      const std::uint64_t paths = args.uint("monte-carlo", 0, true);
      if (paths == 0 || paths > static_cast<std::uint64_t>(io::kMaxPaths))
        throw input_error("--monte-carlo: the number of paths must be in [1, 100000000]");
      if (!args.get("seed")) throw usage_error("--seed is required with --monte-carlo");
      std::string model_text, model_name = "model";
      if (auto m = args.get("model")) model_text = io::read_file(*m), model_name = *m;
      spec.source = StressSource::monte_carlo;
      spec.monte_carlo = io::parse_mc_model(model_text, model_name, unds, atm_vols(unds, in.market, false));
      spec.monte_carlo.paths = static_cast<std::int64_t>(paths);
      spec.monte_carlo.seed = args.uint("seed", 0, true);
      info.source = "monte-carlo";
      info.seed = spec.monte_carlo.seed;
      info.inputs = "Monte Carlo, " + std::to_string(paths) + " paths, seed " + std::to_string(info.seed) +
                    (args.get("model") ? ", model " + *args.get("model") : std::string(", today's ATM vols, no correlation"));
    }
  }
  info.confidence = spec.confidence;
  info.horizon_days = spec.horizon_days;
  log("%s: %lld scenarios over %zu underlyings, horizon %g days, confidence %g", info.source.c_str(),
      static_cast<long long>(spec.scenario_count()), unds.size(), spec.horizon_days, spec.confidence);

  Progress progress(log);
  const auto on_progress = [&](std::int64_t done, std::int64_t total) { progress(done, total); };
  const StressResult r =
      args.get("workers")
          ? service::run_stress_on_workers(*args.get("workers"), in.book, in.market, methodology, spec, on_progress,
                                           [&](const std::string& line) { log("%s", line.c_str()); },
                                           static_cast<int>(args.uint("timeout", 3600)))
          : run_stress(in.book, in.market, methodology, spec, device, on_progress);
  log("device: %s; %lld scenarios × %zu accounts in %.2f s (%.3g position revaluations/s)", r.device.c_str(),
      static_cast<long long>(r.scenarios), r.equity.size(), r.seconds,
      static_cast<double>(r.scenarios) * static_cast<double>(in.book.position_count()) / std::max(r.seconds, 1e-9));
  io::write_stress_outputs(out, in.book, spec, r, info);
  log("wrote %s/scenarios.csv, accounts.csv, summary.json, report.html", out.c_str());
  std::printf("vault VaR %g%% %.2f, ES %.2f; bad debt mean %.2f, ES %.2f over %lld scenarios\n", spec.confidence * 100,
              r.vault_var, r.vault_es, r.bad_debt_mean, r.bad_debt_es, static_cast<long long>(r.scenarios));
  return 0;
}

}  // namespace vaultrisk::cli

namespace vaultrisk::cli {
namespace {

constexpr const char* kWorkerHelp = R"(Usage: vaultrisk stress-worker --nats URL [options]

Serves `vaultrisk stress --workers URL`: pulls groups of accounts from the JetStream
work queue STRESS, revalues them under the job's scenarios, publishes the result
to STRESS_RESULTS and only then acks. A worker killed mid-group loses nothing: the
group goes to another worker after the ack wait. Inputs come over NATS too.
Prints "ready" once subscribed; SIGINT/SIGTERM stop it after the current group.

Options:
  --nats URL        NATS server with JetStream (default nats://127.0.0.1:4222)
  --device D        auto (GPU when present, default), cpu or gpu
  --ack-wait S      seconds without progress before a group is redelivered (default 30)
  --quiet           no log lines
)";

std::atomic<bool> g_worker_stop{false};
void on_worker_signal(int) { g_worker_stop = true; }

}  // namespace

int cmd_stress_worker(const std::vector<std::string>& argv) {
  if (wants_help(argv)) return std::fputs(kWorkerHelp, stdout), 0;
  Args args(argv, {"nats", "device", "ack-wait"}, {"quiet"});
  Log log{args.flag("quiet")};
  service::WorkerOptions options;
  options.device = device_arg(args);
  options.ack_wait_s = static_cast<int>(args.uint("ack-wait", 30));
  if (options.ack_wait_s < 1) throw usage_error("--ack-wait must be at least 1 second");
  std::signal(SIGINT, on_worker_signal);
  std::signal(SIGTERM, on_worker_signal);
  return service::run_stress_worker(args.get_or("nats", "nats://127.0.0.1:4222"), options,
                                    [&](const std::string& line) { log("%s", line.c_str()); }, g_worker_stop);
}

}  // namespace vaultrisk::cli
