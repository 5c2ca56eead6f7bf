// The vaultrisk command line: gen-book, price, revalue, default-config.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "cli/args.hpp"
#include "cli/common.hpp"
#include "cli/chain_commands.hpp"
#include "cli/live_commands.hpp"
#include "cli/stress_command.hpp"
#include "core/error.hpp"
#include "io/book_csv.hpp"
#include "io/gen_book.hpp"
#include "io/market_json.hpp"
#include "io/methodology_json.hpp"
#include "io/results_csv.hpp"
#include "kernels/engine.hpp"

namespace vaultrisk::cli {
namespace {

constexpr const char* kVersion = "0.1.0";

constexpr const char* kMainHelp = R"(vaultrisk — GPU-accelerated portfolio risk and liquidation engine

Usage: vaultrisk <command> [options]

Commands:
  gen-book        write a deterministic synthetic book and market
  price           price every instrument with Greeks
  revalue         revalue every account: equity, margin, status
  stress          stress, VaR and ES: named, historical or Monte Carlo scenarios, full revaluation
  stress-worker   serve `stress --workers`: revalue groups of accounts from a NATS work queue
  default-config  print the default margin methodology as a config file
  serve           the live service: NATS ticks and vault events in; alerts, intents, API out
  oracle-sim      publish simulated signed oracle ticks (GBM with an optional crash)
  deploy-anchor   deploy the on-chain anchor contract
  proof           an account's Merkle proof for an epoch, optionally verified on-chain
  verify-epoch    rebuild an epoch's roots from stream EPOCHS and check them on-chain
  verify-intent   check a liquidation intent's signature on-chain

Run 'vaultrisk <command> --help' for a command's options.
Spec: file formats and methodology are described in README.md and docs/.
)";

constexpr const char* kGenBookHelp = R"(Usage: vaultrisk gen-book --accounts N [--underlyings U] [--seed S] [--time T] --out DIR

Writes DIR/instruments.csv, accounts.csv, positions.csv and market.json.
The same options always produce the same bytes.

  --accounts N      number of accounts (about 10 positions each; N/10 instruments)
  --underlyings U   1..10 underlyings, BTC, ETH, SOL, ... (default 3)
  --seed S          random seed (default 1)
  --time T          market time, unix seconds; expiries follow it (default 1767225600,
                    2026-01-01; pass $(date +%s) for a book to drive live)
  --out DIR         output folder (created if missing)

Example: vaultrisk gen-book --accounts 100000 --out book
)";

constexpr const char* kPriceHelp = R"(Usage: vaultrisk price --book DIR --market FILE --out FILE [--device auto|cpu|gpu]

Writes one row per instrument: instrument,price,vol,delta,gamma,vega,theta,rho.
Black-76 on F = S e^{rT} with the SVI mark vol of the option's expiry; Greeks are
Black-Scholes Greeks at that vol (vega and rho per 1.00, theta per year).
Perps: price = spot, delta = 1.

  --book DIR      book folder (instruments.csv, accounts.csv, positions.csv)
  --market FILE   market snapshot JSON
  --out FILE      output CSV (written atomically)
  --device D      auto (GPU when present, default), cpu or gpu
)";

constexpr const char* kRevalueHelp = R"(Usage: vaultrisk revalue --book DIR --market FILE [--config FILE] --out DIR [--device auto|cpu|gpu]

Writes DIR/accounts.csv (account,equity,mm,im,mm_surplus,im_surplus,status) and
DIR/account_underlyings.csv (account,underlying,mtm,delta,gamma,vega,theta,rho,
scan,worst,mm,im) and prints a summary.

  --book DIR      book folder (instruments.csv, accounts.csv, positions.csv)
  --market FILE   market snapshot JSON
  --config FILE   margin methodology JSON (default: SPEC §4; see default-config)
  --out DIR       output folder (created if missing; files written atomically)
  --device D      auto (GPU when present, default), cpu or gpu
  --quiet         no log lines, errors only
)";

int cmd_gen_book(const std::vector<std::string>& argv) {
  if (wants_help(argv)) return std::fputs(kGenBookHelp, stdout), 0;
  Args args(argv, {"accounts", "underlyings", "seed", "time", "out"}, {"quiet"});
  Log log{args.flag("quiet")};
  io::GenBookOptions opt;
  opt.accounts = args.uint("accounts", 0, true);
  opt.underlyings = static_cast<int>(args.uint("underlyings", 3));
  opt.seed = args.uint("seed", 1);
  opt.time = static_cast<std::int64_t>(args.uint("time", static_cast<std::uint64_t>(opt.time)));
  const std::filesystem::path out = args.require("out");
  const bool tty = ::isatty(STDERR_FILENO) && !log.quiet;
  int last_pct = -1;
  auto progress = [&](std::uint64_t done, std::uint64_t total) {
    const int pct = total ? static_cast<int>(100 * std::min(done, total) / total) : 100;
    if (pct == last_pct || log.quiet) return;
    if (tty) {
      std::fprintf(stderr, "\r  positions %3d%% (%llu)", pct, static_cast<unsigned long long>(done));
      if (pct == 100) std::fputc('\n', stderr);
    } else if (pct / 25 != last_pct / 25 || pct == 100) {
      log("positions %d%% (%llu)", pct, static_cast<unsigned long long>(done));
    }
    last_pct = pct;
  };
  const auto s = io::gen_book(opt, out, progress);
  log("wrote %s: %llu instruments, %llu accounts, %llu positions, market.json", out.c_str(),
      static_cast<unsigned long long>(s.instruments), static_cast<unsigned long long>(s.accounts),
      static_cast<unsigned long long>(s.positions));
  return 0;
}

int cmd_price(const std::vector<std::string>& argv) {
  if (wants_help(argv)) return std::fputs(kPriceHelp, stdout), 0;
  Args args(argv, {"book", "market", "out", "device"}, {"quiet"});
  Log log{args.flag("quiet")};
  const Device device = device_arg(args);
  const std::filesystem::path out = args.require("out");
  Loaded in = load_inputs(args, log);
  Engine engine(in.book, default_methodology(), device);
  log("device: %s", engine.device_name().c_str());
  auto t = Clock::now();
  engine.revalue(in.market);
  log("priced %zu instruments (%.1f ms)", in.book.instrument_count(), ms_since(t));
  if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
  io::write_price_csv(out, in.book, engine.instruments());
  log("wrote %s", out.c_str());
  return 0;
}

int cmd_revalue(const std::vector<std::string>& argv) {
  if (wants_help(argv)) return std::fputs(kRevalueHelp, stdout), 0;
  Args args(argv, {"book", "market", "config", "out", "device"}, {"quiet"});
  Log log{args.flag("quiet")};
  const Device device = device_arg(args);
  const std::filesystem::path out = args.require("out");
  Methodology methodology = default_methodology();
  if (auto cfg = args.get("config")) {
    methodology = io::load_methodology(*cfg);
    log("methodology from %s (%zu scenarios, %zu underlying overrides)", cfg->c_str(),
        methodology.base.scenarios.size(), methodology.overrides.size());
  } else {
    log("methodology: SPEC §4 defaults (%zu scenarios)", methodology.base.scenarios.size());
  }
  Loaded in = load_inputs(args, log);
  auto t = Clock::now();
  Engine engine(in.book, methodology, device);
  log("device: %s; layout %lld blocks (%.1f ms)", engine.device_name().c_str(),
      static_cast<long long>(engine.block_count()), ms_since(t));
  t = Clock::now();
  engine.revalue(in.market);
  log("revalued %zu accounts (%.1f ms)", in.book.account_count(), ms_since(t));

  const AccountTable accounts = engine.accounts();
  const BlockResults blocks = engine.blocks();
  std::filesystem::create_directories(out);
  io::write_accounts_csv(out / "accounts.csv", in.book, accounts);
  io::write_account_underlyings_csv(out / "account_underlyings.csv", in.book, blocks);

  std::size_t count[4] = {0, 0, 0, 0};  // by status, `error` (3) included
  double equity = 0, mm = 0, im = 0;
  for (std::size_t a = 0; a < accounts.status.size(); ++a) {
    ++count[accounts.status[a]];
    equity += accounts.equity[a];
    mm += accounts.mm[a];
    im += accounts.im[a];
  }
  log("wrote %s/accounts.csv and account_underlyings.csv", out.c_str());
  std::printf("accounts %zu: healthy %zu, margin_call %zu, liquidatable %zu", accounts.status.size(),
              count[0], count[1], count[2]);
  if (count[3] > 0) std::printf(", error %zu", count[3]);
  std::printf("\n");
  std::printf("total equity %.2f, maintenance margin %.2f, initial margin %.2f\n", equity, mm, im);
  return 0;
}

int cmd_default_config(const std::vector<std::string>& argv) {
  if (wants_help(argv)) {
    std::puts("Usage: vaultrisk default-config\n\nPrints the SPEC §4 methodology as a config file for --config.\n"
              "Every key is optional; \"underlyings\": {\"BTC\": {...}} overrides per underlying.");
    return 0;
  }
  Args args(argv, {}, {});
  std::fputs(io::methodology_to_json(default_methodology()).c_str(), stdout);
  return 0;
}

}  // namespace

Loaded load_inputs(const Args& args, const Log& log) {
  const std::filesystem::path book_dir = args.require("book");
  const std::filesystem::path market_file = args.require("market");
  auto t = Clock::now();
  Loaded in{io::load_book(book_dir), {}};
  log("loaded book %s: %zu instruments, %zu accounts, %zu positions, %zu underlyings (%.1f ms)",
      book_dir.c_str(), in.book.instrument_count(), in.book.account_count(), in.book.position_count(),
      in.book.underlyings.size(), ms_since(t));
  t = Clock::now();
  in.market = io::load_market(market_file);
  log("loaded market %s: %zu underlyings at time %.0f (%.1f ms)", market_file.c_str(),
      in.market.underlyings.size(), in.market.time, ms_since(t));
  return in;
}

Device device_arg(const Args& args) {
  const Device d = parse_device(args.get_or("device", "auto"));
  if (d == Device::gpu && !gpu_available())
    throw unavailable_error(VR_CUDA_BUILD ? "--device gpu: this build has CUDA, but no CUDA device is present"
                                          : "--device gpu: this build has no CUDA backend (configure with -DVR_CUDA=ON)");
  return d;
}

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kMainHelp, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") return std::printf("vaultrisk %s (%s)\n", kVersion, VR_CUDA_BUILD ? "cpu+cuda" : "cpu"), 0;
  const std::string cmd = args[0];
  args.erase(args.begin());
  try {
    if (cmd == "gen-book") return cmd_gen_book(args);
    if (cmd == "price") return cmd_price(args);
    if (cmd == "revalue") return cmd_revalue(args);
    if (cmd == "stress") return cmd_stress(args);
    if (cmd == "stress-worker") return cmd_stress_worker(args);
    if (cmd == "default-config") return cmd_default_config(args);
    if (cmd == "serve") return cmd_serve(args);
    if (cmd == "oracle-sim") return cmd_oracle_sim(args);
    if (cmd == "deploy-anchor") return cmd_deploy_anchor(args);
    if (cmd == "proof") return cmd_proof(args);
    if (cmd == "verify-epoch") return cmd_verify_epoch(args);
    if (cmd == "verify-intent") return cmd_verify_intent(args);
    std::fprintf(stderr, "vaultrisk: unknown command '%s'\n\n%s", cmd.c_str(), kMainHelp);
    return 2;
  } catch (const usage_error& e) {
    std::fprintf(stderr, "vaultrisk %s: %s (see 'vaultrisk %s --help')\n", cmd.c_str(), e.what(), cmd.c_str());
    return 2;
  } catch (const input_error& e) {
    std::fprintf(stderr, "vaultrisk %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vaultrisk %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}

}  // namespace vaultrisk::cli

int main(int argc, char** argv) { return vaultrisk::cli::run(argc, argv); }
