// Coordinator and worker of distributed stress over NATS JetStream.
#include "service/stress_work.hpp"

#include <chrono>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/checksum.hpp"
#include "core/error.hpp"
#include "io/book_csv.hpp"
#include "io/market_json.hpp"
#include "io/methodology_json.hpp"
#include "kernels/stress_backend.hpp"
#include "service/nats_client.hpp"

namespace vaultrisk::service {

namespace {

using json = nlohmann::json;
constexpr std::size_t kPartBytes = 512 * 1024;
constexpr std::int64_t kDataMaxAgeS = 24 * 3600;
const char* kWorkStream = "STRESS";
const char* kDataStream = "STRESS_DATA";
const char* kResultStream = "STRESS_RESULTS";

void ensure_streams(NatsClient& nc) {
  nc.ensure_stream(kWorkStream, {"stress.work.>"}, {true, kDataMaxAgeS});
  nc.ensure_stream(kDataStream, {"stress.data.>"}, {false, kDataMaxAgeS});
  nc.ensure_stream(kResultStream, {"stress.result.>"}, {false, kDataMaxAgeS});
}

// A blob in parts: each part's body is "<parts>\n<bytes>"; part k on `<prefix>.<k>`.
void put_blob(NatsClient& nc, const std::string& prefix, const std::string& bytes) {
  const std::size_t parts = std::max<std::size_t>(1, (bytes.size() + kPartBytes - 1) / kPartBytes);
  for (std::size_t k = parts; k-- > 0;) {  // part 0 last: once it is there, all are
    const std::string body = std::to_string(parts) + "\n" + bytes.substr(k * kPartBytes, kPartBytes);
    nc.js_publish(prefix + "." + std::to_string(k), body, prefix + "." + std::to_string(k));
  }
}

std::optional<std::string> get_blob(NatsClient& nc, const char* stream, const std::string& prefix) {
  auto first = nc.js_get_last(stream, prefix + ".0");
  if (!first) return std::nullopt;
  const auto split = [&](const std::string& body, std::size_t& parts) {
    const std::size_t nl = body.find('\n');
    if (nl == std::string::npos) throw input_error(prefix + ": a part without its count");
    parts = std::stoull(body.substr(0, nl));
    return body.substr(nl + 1);
  };
  std::size_t parts = 0;
  std::string out = split(*first, parts);
  for (std::size_t k = 1; k < parts; ++k) {
    const auto body = nc.js_get_last(stream, prefix + "." + std::to_string(k));
    if (!body) throw input_error(prefix + ": part " + std::to_string(k) + " of " + std::to_string(parts) + " is missing");
    std::size_t again = 0;
    out += split(*body, again);
  }
  return out;
}

json vec(const std::vector<double>& v) { return json(v); }

}  // namespace

std::string spec_to_json(const StressSpec& s) {
  json j = {{"source", static_cast<int>(s.source)}, {"horizon_days", s.horizon_days}, {"confidence", s.confidence}};
  j["table"] = {{"names", s.table.names}, {"spot_mult", vec(s.table.spot_mult)}, {"dvol", vec(s.table.dvol)}};
  const MonteCarloSpec& m = s.monte_carlo;
  j["monte_carlo"] = {{"paths", m.paths}, {"seed", m.seed}, {"sigma", vec(m.sigma)}, {"vol_of_vol", vec(m.vol_of_vol)},
                      {"correlation", vec(m.correlation)}, {"spot_vol_correlation", m.spot_vol_correlation}};
  return j.dump();
}

StressSpec spec_from_json(const std::string& text) {
  const json j = json::parse(text);
  StressSpec s;
  s.source = static_cast<StressSource>(j.at("source").get<int>());
  s.horizon_days = j.at("horizon_days").get<double>();
  s.confidence = j.at("confidence").get<double>();
  s.table.names = j.at("table").at("names").get<std::vector<std::string>>();
  s.table.spot_mult = j.at("table").at("spot_mult").get<std::vector<double>>();
  s.table.dvol = j.at("table").at("dvol").get<std::vector<double>>();
  const json& m = j.at("monte_carlo");
  s.monte_carlo.paths = m.at("paths").get<std::int64_t>();
  s.monte_carlo.seed = m.at("seed").get<std::uint64_t>();
  s.monte_carlo.sigma = m.at("sigma").get<std::vector<double>>();
  s.monte_carlo.vol_of_vol = m.at("vol_of_vol").get<std::vector<double>>();
  s.monte_carlo.correlation = m.at("correlation").get<std::vector<double>>();
  s.monte_carlo.spot_vol_correlation = m.at("spot_vol_correlation").get<double>();
  return s;
}

// CBOR keeps every double's bits.
std::string part_to_bytes(const StressResult& r) {
  json j = {{"account_begin", r.account_begin}, {"scenarios", r.scenarios}, {"tail", r.tail},
            {"underlyings", r.underlyings}, {"bad_debt", r.bad_debt}, {"insolvent", r.insolvent},
            {"liquidatable", r.liquidatable}, {"equity", r.equity}, {"var", r.var}, {"es", r.es},
            {"worst_pnl", r.worst_pnl}, {"worst_scenario", r.worst_scenario},
            {"insolvent_scenarios", r.insolvent_scenarios}, {"status", r.status}, {"named_pnl", r.named_pnl},
            {"named_status", r.named_status}, {"device", r.device}, {"seconds", r.seconds}};
  if (r.account_begin == 0)  // the vault's columns are the same in every part: the first carries them
    j.update({{"vault_pnl", r.vault_pnl}, {"vault_und", r.vault_und}, {"spot_mult", r.spot_mult}, {"dvol", r.dvol}});
  const std::vector<std::uint8_t> cbor = json::to_cbor(j);
  return std::string(cbor.begin(), cbor.end());
}

StressResult part_from_bytes(const std::string& bytes) {
  const json j = json::from_cbor(bytes);
  StressResult r;
  r.account_begin = j.at("account_begin").get<std::int64_t>();
  r.scenarios = j.at("scenarios").get<std::int64_t>();
  r.tail = j.at("tail").get<std::int32_t>();
  r.underlyings = j.at("underlyings").get<std::vector<std::string>>();
  const auto get = [&](const char* k, auto& out) {
    if (j.contains(k)) j.at(k).get_to(out);
  };
  get("bad_debt", r.bad_debt);
  get("insolvent", r.insolvent);
  get("liquidatable", r.liquidatable);
  get("equity", r.equity);
  get("var", r.var);
  get("es", r.es);
  get("worst_pnl", r.worst_pnl);
  get("worst_scenario", r.worst_scenario);
  get("insolvent_scenarios", r.insolvent_scenarios);
  get("status", r.status);
  get("named_pnl", r.named_pnl);
  get("named_status", r.named_status);
  get("device", r.device);
  get("seconds", r.seconds);
  get("vault_pnl", r.vault_pnl);
  get("vault_und", r.vault_und);
  get("spot_mult", r.spot_mult);
  get("dvol", r.dvol);
  return r;
}

StressResult run_stress_on_workers(const std::string& url, const Book& book, const Market& market,
                                   const Methodology& methodology, const StressSpec& spec,
                                   const StressProgress& progress, const StressLog& log, int timeout_s) {
  const auto t0 = std::chrono::steady_clock::now();
  NatsClient nc(url, "vaultrisk-stress");
  ensure_streams(nc);
  const io::BookFiles files = io::format_book(book);
  const std::string spec_text = spec_to_json(spec), market_text = io::market_to_json(market),
                    method_text = io::methodology_to_json(methodology);
  const std::string job = "j" + checksum_hex(spec_text + market_text + method_text + files.instruments + files.accounts +
                                             files.positions + std::to_string(t0.time_since_epoch().count()));
  const std::string data = std::string("stress.data.") + job;
  put_blob(nc, data + ".instruments", files.instruments);
  put_blob(nc, data + ".accounts", files.accounts);
  put_blob(nc, data + ".positions", files.positions);
  put_blob(nc, data + ".market", market_text);
  put_blob(nc, data + ".methodology", method_text);
  put_blob(nc, data + ".spec", spec_text);
  const auto n_acc = static_cast<std::int64_t>(book.account_count());
  const std::int64_t groups = std::max<std::int64_t>(1, (n_acc + detail::kStressGroupAccounts - 1) / detail::kStressGroupAccounts);
  for (std::int64_t g = 0; g < groups; ++g) {
    const std::int64_t a0 = g * detail::kStressGroupAccounts, a1 = std::min(n_acc, a0 + detail::kStressGroupAccounts);
    const json work = {{"job", job}, {"group", g}, {"begin", a0}, {"end", a1}};
    nc.js_publish("stress.work." + job, work.dump(), job + ".work." + std::to_string(g));
  }
  log("job " + job + ": " + std::to_string(groups) + " groups of up to " + std::to_string(detail::kStressGroupAccounts) +
      " accounts on " + kWorkStream + "; waiting for stress-worker processes");
  std::map<std::int64_t, StressResult> done;
  const auto deadline = t0 + std::chrono::seconds(timeout_s);
  while (static_cast<std::int64_t>(done.size()) < groups) {
    for (std::int64_t g = 0; g < groups; ++g) {
      if (done.count(g)) continue;
      const auto bytes = get_blob(nc, kResultStream, "stress.result." + job + "." + std::to_string(g));
      if (!bytes) continue;
      if (bytes->rfind("error:", 0) == 0) throw input_error("stress-worker, group " + std::to_string(g) + ": " + bytes->substr(6));
      done.emplace(g, part_from_bytes(*bytes));
      if (progress) progress(static_cast<std::int64_t>(done.size()), groups);
    }
    if (static_cast<std::int64_t>(done.size()) == groups) break;
    if (std::chrono::steady_clock::now() > deadline)
      throw unavailable_error("--workers: " + std::to_string(groups - static_cast<std::int64_t>(done.size())) + " of " +
                              std::to_string(groups) + " groups unfinished after " + std::to_string(timeout_s) +
                              " s; are stress-worker processes running on " + url + "?");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::vector<StressResult> parts;
  std::string devices;
  for (auto& [g, p] : done) {
    if (devices.find(p.device) == std::string::npos) devices += (devices.empty() ? "" : "; ") + p.device;
    parts.push_back(std::move(p));
  }
  StressResult r = merge_stress(std::move(parts));
  r.device = std::to_string(groups) + " groups on stress-worker processes: " + devices;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

int run_stress_worker(const std::string& url, const WorkerOptions& options, const StressLog& log, std::atomic<bool>& stop) {
  NatsClient nc(url, "vaultrisk-stress-worker");
  ensure_streams(nc);
  nc.pull_subscribe_shared(kWorkStream, "stress.work.>", "stress-workers", options.ack_wait_s);
  log("serving stress groups from " + std::string(kWorkStream) + " on " + url);
  std::printf("ready\n");
  std::fflush(stdout);
  struct Inputs {
    Book book;
    Market market;
    Methodology methodology;
    StressSpec spec;
  };
  // The inputs of the job last served: groups of one job come in a row, and a worker
  // that lives through many jobs must not keep every book it has seen.
  std::string cached_job;
  std::shared_ptr<Inputs> in;
  while (!stop) {
    std::vector<JsMessage> msgs = nc.fetch(1, 1000);
    for (const JsMessage& m : msgs) {
      std::string job = "?";
      std::int64_t group = -1;
      try {
        const json work = json::parse(m.view().data());
        job = work.at("job").get<std::string>();
        group = work.at("group").get<std::int64_t>();
        const std::string result = "stress.result." + job + "." + std::to_string(group);
        if (nc.js_get_last(kResultStream, result + ".0")) {  // done before a redelivery: ack only
          nc.ack(m);
          continue;
        }
        if (job != cached_job) {
          in.reset();  // the previous job's book goes before the next one is read
          cached_job.clear();
          const std::string data = "stress.data." + job;
          const auto need = [&](const char* name) {
            auto b = get_blob(nc, kDataStream, data + "." + name);
            if (!b) throw input_error(std::string("job input '") + name + "' is missing from " + kDataStream);
            return *b;
          };
          auto fresh = std::make_shared<Inputs>();
          fresh->book = io::parse_book({need("instruments"), need("accounts"), need("positions")});
          fresh->market = io::parse_market(need("market"), "market");
          fresh->methodology = io::parse_methodology(need("methodology"), "methodology");
          fresh->spec = spec_from_json(need("spec"));
          in = std::move(fresh);
          cached_job = job;
        }
        log("job " + job + " group " + std::to_string(group) + ": accounts [" + std::to_string(work.at("begin").get<std::int64_t>()) +
            ", " + std::to_string(work.at("end").get<std::int64_t>()) + ")");
        auto last = std::chrono::steady_clock::now();
        const StressResult part = run_stress_accounts(
            in->book, in->market, in->methodology, in->spec, options.device, work.at("begin").get<std::int64_t>(),
            work.at("end").get<std::int64_t>(), [&](std::int64_t, std::int64_t) {
              if (std::chrono::steady_clock::now() - last > std::chrono::seconds(2)) {
                nc.in_progress(m);  // still at it: keep the group
                last = std::chrono::steady_clock::now();
              }
            });
        put_blob(nc, result, part_to_bytes(part));
        nc.ack(m);  // only now that the result is in the stream
      } catch (const input_error& e) {
        log(std::string("job ") + job + " group " + std::to_string(group) + ": " + e.what());
        if (group >= 0) put_blob(nc, "stress.result." + job + "." + std::to_string(group), std::string("error:") + e.what());
        nc.term(m);
      } catch (const std::exception& e) {
        log(std::string("job ") + job + " group " + std::to_string(group) + " failed (it will be redelivered): " + e.what());
      }
    }
    NatsClient::free(msgs);
  }
  return 0;
}

}  // namespace vaultrisk::service
