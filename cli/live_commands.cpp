// `vaultrisk serve` and `vaultrisk oracle-sim`: the live side of the CLI.
#include "cli/live_commands.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "chain/secp256k1.hpp"
#include "core/error.hpp"
#include "feeds/oracle_tick.hpp"
#include "io/market_json.hpp"
#include "io/number_format.hpp"
#include "service/cluster.hpp"
#include "service/nats_client.hpp"
#include "service/risk_service.hpp"

namespace vaultrisk::cli {

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

void install_signals() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

// A serve config file (TOML, read by toml++) as the command-line options it stands
// for: `key = value` is --key value, arrays join with commas, `flag = true` is --flag.
std::vector<std::string> serve_config_args(const std::string& file, const std::set<std::string>& options,
                                           const std::set<std::string>& flags) {
  toml::table t;
  try {
    t = toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    throw input_error(file + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) + ": " +
                      std::string(e.description()));
  }
  std::vector<std::string> out;
  auto scalar = [&](const toml::node& n, const std::string& key) -> std::string {
    if (auto s = n.value<std::string>()) return *s;
    if (auto i = n.value<std::int64_t>()) return std::to_string(*i);
    throw input_error(file + ": " + key + ": expected a string or an integer");
  };
  for (const auto& [k, v] : t) {
    const std::string key(k.str());
    const auto line = std::to_string(v.source().begin.line);
    if (key == "serve-config") throw input_error(file + ":" + line + ": serve-config cannot name another file");
    if (flags.count(key)) {
      const auto b = v.value<bool>();
      if (!b) throw input_error(file + ":" + line + ": " + key + ": expected true or false");
      if (*b) out.push_back("--" + key);
    } else if (options.count(key)) {
      std::string value;
      if (const auto* arr = v.as_array()) {
        for (const auto& item : *arr) {
          if (!value.empty()) value += ',';
          value += scalar(item, key);
        }
      } else {
        value = scalar(v, key);
      }
      out.push_back("--" + key + "=" + value);
    } else {
      throw input_error(file + ":" + line + ": unknown option '" + key + "' (see vaultrisk serve --help)");
    }
  }
  return out;
}

constexpr const char* kServeHelp = R"(Usage: vaultrisk serve --oracle-signers ADDR[,ADDR...] --signing-key FILE [options]

The live risk service. Subscribes to signed oracle ticks (oracle.tick.<UNDERLYING>)
and to the JetStream stream VAULT (vault.event.>, created if missing). It revalues
incrementally and publishes:
  risk.alert.<status>.<account>      one alert per status change
  sequencer.intent.liquidation       EIP-712-signed intents (JetStream INTENTS)
  risk.reject.oracle|vault           every rejected message, with its reason
  vaultrisk.epoch.<E>.*              every epoch's account leaves (JetStream EPOCHS)
Every --epoch-seconds it closes an epoch: the Merkle root of every account's state
and of the intents signed, anchored on-chain with --rpc/--contract (in order; kept
queued while the chain is down). It answers risk.api.account, risk.api.proof and
risk.api.health as the NATS micro service "vaultrisk" ($SRV.PING|INFO|STATS).
State survives kill -9 (write-ahead log and snapshots in --state-dir).

  --nats URL                  NATS server (default nats://127.0.0.1:4222; tls://... with --tls-ca)
  --nats-creds FILE           NATS user credentials (.creds: JWT and NKey seed)
  --tls-ca FILE               CA that signed the NATS server's certificate; turns TLS on
  --tls-cert FILE --tls-key FILE
                              client certificate and key, for servers that verify clients
  --book DIR                  initial book, used when --state-dir holds none
  --market FILE               initial market, until ticks arrive
  --config FILE               margin methodology JSON (default SPEC §4)
  --state-dir DIR             durable state (default ./vaultrisk-state); every file checksummed: damage
                              is recovered exactly or refused with the file named
  --fresh-state               set the state dir's contents aside (discarded-<ms>/) and start from --book,
                              replaying VAULT from sequence 1; nonces and epochs continue
  --oracle-signers LIST       comma-separated oracle addresses allowed to sign ticks
  --signing-key FILE          hex secp256k1 key that signs liquidation intents
  --chain-id N                EIP-712 domain chainId (default 31337)
  --contract ADDR             the anchor contract (vaultrisk deploy-anchor): the EIP-712
                              verifyingContract and where epochs are anchored (default 0x00..00)
  --rpc URL                   EVM JSON-RPC endpoint to anchor epochs on (default: none)
  --poster-key FILE           key that sends anchor transactions (default: --signing-key)
  --rpc-timeout-ms N          per JSON-RPC request (default 5000)
  --intent-ttl SECONDS        intent deadline; re-issued if still liquidatable (default 60)
  --max-tick-age-ms N         staleness window for ticks (default 10000)
  --epoch-seconds N           epoch length (default 60)
  --snapshot-every N          vault events between snapshots (default 10000); a snapshot is also due once
                              the WAL is as large as the last one, and after 60 s with anything in the WAL
  --epochs-max-age-days N     retention of stream EPOCHS when serve creates it (default 30; 0 for ever)
  --intents-max-age-days N    retention of stream INTENTS when serve creates it (default 30; 0 for ever)
  --metrics-port N            Prometheus /metrics port (default 9464; 0 any, -1 off)
  --metrics-bind ADDR         address /metrics listens on (default 127.0.0.1; 0.0.0.0 for all)
  --device auto|cpu|gpu       compute device (default auto)
  --merge-accounts N          accounts opened, or with positions opened or closed, are valued
                              apart from the book's layout; a full layout is built in the
                              background once N are (default 4096)...
  --merge-after SECONDS       ... or once the oldest has been apart this long (default 30)
  --quiet                     no log lines
  --serve-config FILE         TOML file of these same options (keys without the "--",
                              lists as arrays, flags as true); the command line wins

Cluster (SPEC §9; docs/cluster.md). Several instances share one NATS JetStream
cluster; each account's partition is owned by one instance at a time, by lease:
  --partitions P              number of partitions, fixed for a deployment (0: one
                              instance, no cluster; default 0)
  --instance NAME             this instance's name, unique in the cluster
  --lease-ms N                a partition passes on N ms after its owner stops
                              renewing (default 2000)
  --snapshot-ms N             a partition's state goes to NATS at most every N ms
                              (default 2000); a takeover replays VAULT from there
  --replicas N                replicas of the streams and buckets serve creates
                              (default 1; 3 on a 3-node cluster)

Prints "ready" on stdout once subscribed. SIGINT/SIGTERM stop it cleanly.
)";

constexpr const char* kSimHelp = R"(Usage: vaultrisk oracle-sim --market FILE --key FILE [options]

Publishes signed oracle ticks on oracle.tick.<UNDERLYING>: geometric Brownian
motion from the market file's spots, an optional crash, SVI smiles scaled with it.

  --nats URL          NATS server (default nats://127.0.0.1:4222)
  --market FILE       starting market (e.g. a gen-book market.json)
  --key FILE          hex secp256k1 oracle key (its address goes to serve --oracle-signers)
  --rate HZ           ticks per second per underlying (default 2)
  --duration S        seconds to run (default 0: until Ctrl-C)
  --speed X           simulated seconds per real second (default 3600)
  --vol SIGMA         annual GBM volatility (default 0.8)
  --crash-at S        real seconds into the run at which spots drop (default: never)
  --crash-size F      fraction the spots drop by in the crash (default 0.3)
  --seed N            random seed (default 1)
  --quiet             no log lines
)";

}  // namespace

int cmd_serve(const std::vector<std::string>& argv) {
  for (const auto& a : argv)
    if (a == "--help" || a == "-h") return std::fputs(kServeHelp, stdout), 0;
  const std::set<std::string> options = {
      "nats", "book", "market", "config", "state-dir", "oracle-signers", "signing-key", "chain-id",
      "verifying-contract", "contract", "rpc", "poster-key", "rpc-timeout-ms", "intent-ttl", "max-tick-age-ms",
      "epoch-seconds", "snapshot-every", "epochs-max-age-days", "intents-max-age-days", "metrics-port",
      "metrics-bind", "device", "nats-creds", "tls-ca", "tls-cert", "tls-key", "serve-config", "partitions",
      "instance", "lease-ms", "snapshot-ms", "replicas", "merge-accounts", "merge-after"};
  const std::set<std::string> flags = {"quiet", "fresh-state"};
  // The config file's options first, so that the command line overrides them.
  std::vector<std::string> all;
  {
    const Args pre(argv, options, flags);
    if (const auto file = pre.get("serve-config")) all = serve_config_args(*file, options, flags);
  }
  all.insert(all.end(), argv.begin(), argv.end());
  Args args(all, options, flags);
  service::ServeConfig c;
  c.nats_url = args.get_or("nats", c.nats_url);
  c.nats_security = {args.get_or("nats-creds", ""), args.get_or("tls-ca", ""), args.get_or("tls-cert", ""),
                     args.get_or("tls-key", "")};
  c.metrics_bind = args.get_or("metrics-bind", c.metrics_bind);
  c.book_dir = args.get_or("book", "");
  c.market_file = args.get_or("market", "");
  c.config_file = args.get_or("config", "");
  c.state_dir = args.get_or("state-dir", c.state_dir);
  c.oracle_signers = split(args.require("oracle-signers"), ',');
  c.signing_key_file = args.require("signing-key");
  c.chain_id = args.uint("chain-id", c.chain_id);
  c.verifying_contract = args.get_or("contract", args.get_or("verifying-contract", c.verifying_contract));
  c.rpc_url = args.get_or("rpc", "");
  c.poster_key_file = args.get_or("poster-key", "");
  c.rpc_timeout_ms = static_cast<int>(args.uint("rpc-timeout-ms", 5000));
  c.intent_ttl_s = static_cast<std::int64_t>(args.uint("intent-ttl", 60));
  c.max_tick_age_ms = static_cast<std::int64_t>(args.uint("max-tick-age-ms", 10000));
  c.epoch_seconds = static_cast<std::int64_t>(args.uint("epoch-seconds", 60));
  if (c.epoch_seconds == 0) throw usage_error("--epoch-seconds must be at least 1");
  c.snapshot_every = args.uint("snapshot-every", c.snapshot_every);
  if (c.snapshot_every == 0) throw usage_error("--snapshot-every must be at least 1");
  c.epochs_max_age_days = args.uint("epochs-max-age-days", c.epochs_max_age_days);
  c.intents_max_age_days = args.uint("intents-max-age-days", c.intents_max_age_days);
  for (auto [name, days] : {std::pair{"--epochs-max-age-days", c.epochs_max_age_days}, std::pair{"--intents-max-age-days", c.intents_max_age_days}})
    if (days > 36500) throw usage_error(std::string(name) + " must be at most 36500 (0: for ever)");
  const std::string port = args.get_or("metrics-port", "9464");
  c.metrics_port = port == "-1" ? -1 : static_cast<int>(args.uint("metrics-port", 9464));
  c.device = parse_device(args.get_or("device", "auto"));
  c.merge_accounts = args.uint("merge-accounts", c.merge_accounts);
  if (c.merge_accounts < 1 || c.merge_accounts > 100'000'000) throw usage_error("--merge-accounts must be 1..100000000");
  c.merge_after_s = static_cast<double>(args.uint("merge-after", 30));
  if (c.merge_after_s < 1 || c.merge_after_s > 86400) throw usage_error("--merge-after must be 1..86400 seconds");
  c.quiet = args.flag("quiet");
  c.fresh_state = args.flag("fresh-state");
  c.partitions = static_cast<std::uint32_t>(args.uint("partitions", 0));
  if (c.partitions > 1024) throw usage_error("--partitions must be at most 1024");
  c.instance = args.get_or("instance", "");
  c.lease_ms = static_cast<int>(args.uint("lease-ms", 2000));
  if (c.lease_ms < 500 || c.lease_ms > 600000) throw usage_error("--lease-ms must be 500..600000");
  c.snapshot_ms = static_cast<int>(args.uint("snapshot-ms", 2000));
  if (c.snapshot_ms < 100 || c.snapshot_ms > 3600000) throw usage_error("--snapshot-ms must be 100..3600000");
  c.replicas = static_cast<int>(args.uint("replicas", 1));
  if (c.replicas < 1 || c.replicas > 5) throw usage_error("--replicas must be 1..5");
  if (c.partitions == 0 && (args.get("instance") || args.get("lease-ms") || args.get("snapshot-ms")))
    throw usage_error("--instance, --lease-ms and --snapshot-ms need --partitions (a cluster)");
  install_signals();
  return c.partitions ? service::run_cluster(c, g_stop) : service::run_service(c, g_stop);
}

int cmd_oracle_sim(const std::vector<std::string>& argv) {
  for (const auto& a : argv)
    if (a == "--help" || a == "-h") return std::fputs(kSimHelp, stdout), 0;
  Args args(argv, {"nats", "market", "key", "rate", "duration", "speed", "vol", "crash-at", "crash-size", "seed"}, {"quiet"});
  const Market start = io::load_market(args.require("market"));
  const std::string key = chain::read_key_file(args.require("key"));
  const chain::Signer signer(key);
  auto num = [&](const char* name, double fallback) {
    const auto v = args.get(name);
    if (!v) return fallback;
    try {
      return std::stod(*v);
    } catch (...) {
      throw usage_error(std::string("--") + name + ": expected a number");
    }
  };
  const double rate = num("rate", 2), duration = num("duration", 0), speed = num("speed", 3600);
  const double vol = num("vol", 0.8), crash_at = num("crash-at", -1), crash_size = num("crash-size", 0.3);
  if (!(rate > 0)) throw usage_error("--rate must be positive");
  const bool quiet = args.flag("quiet");
  service::NatsClient nats(args.get_or("nats", "nats://127.0.0.1:4222"), "vaultrisk-oracle-sim");
  std::mt19937_64 rng(args.uint("seed", 1));
  std::normal_distribution<double> z(0.0, 1.0);
  install_signals();

  std::map<std::string, UnderlyingMarket> m(start.underlyings.begin(), start.underlyings.end());
  std::map<std::string, std::uint64_t> seq;
  const double dt_years = speed / rate / 31536000.0;
  const auto t0 = std::chrono::steady_clock::now();
  bool crashed = false;
  std::uint64_t published = 0;
  if (!quiet)
    std::fprintf(stderr, "[oracle-sim] signer %s, %zu underlyings, %.1f ticks/s each\n",
                 chain::to_hex(signer.address()).c_str(), m.size(), rate);
  for (std::uint64_t step = 0; !g_stop; ++step) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (duration > 0 && elapsed >= duration) break;
    const bool crash_now = crash_at >= 0 && !crashed && elapsed >= crash_at;
    for (auto& [name, um] : m) {
      um.spot *= std::exp(-0.5 * vol * vol * dt_years + vol * std::sqrt(dt_years) * z(rng));
      if (crash_now) {
        um.spot *= 1.0 - crash_size;
        for (auto& e : um.expiries) e.svi.a *= 2.0;  // vol spikes with the crash
      }
      const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      std::uint64_t& s = seq[name];
      s = std::max<std::uint64_t>(s + 1, static_cast<std::uint64_t>(now));  // increasing across restarts too
      nlohmann::json body = {{"underlying", name}, {"seq", s}, {"time_ms", now}, {"spot", um.spot},
                             {"rate", um.rate}, {"confidence", um.confidence}, {"expiries", nlohmann::json::array()}};
      for (const auto& e : um.expiries)
        body["expiries"].push_back({{"expiry", e.expiry},
                                    {"svi", {{"a", e.svi.a}, {"b", e.svi.b}, {"rho", e.svi.rho}, {"m", e.svi.m}, {"sigma", e.svi.sigma}}}});
      const std::string text = body.dump();
      nats.publish("oracle.tick." + name, text, {{"Vaultrisk-Signature", feeds::sign_tick_body(key, text)}});
      ++published;
    }
    if (crash_now) {
      crashed = true;
      if (!quiet) std::fprintf(stderr, "[oracle-sim] crash: spots down %.0f%%\n", crash_size * 100);
    }
    nats.flush();
    std::this_thread::sleep_until(t0 + std::chrono::duration<double>((step + 1) / rate));
  }
  if (!quiet) std::fprintf(stderr, "[oracle-sim] published %llu ticks\n", static_cast<unsigned long long>(published));
  return 0;
}

}  // namespace vaultrisk::cli
