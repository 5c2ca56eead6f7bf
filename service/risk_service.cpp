// RiskService: one engine thread owns all mutable state; NATS callbacks validate
// and enqueue; the vault thread fetches events; everything durable goes through
// the StateStore before it is acknowledged or published.
#include "service/risk_service.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <ctime>
#include <unistd.h>
#include <cstdio>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <queue>
#include <set>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "chain/eip712.hpp"
#include "chain/keccak.hpp"
#include "chain/secp256k1.hpp"
#include "core/checksum.hpp"
#include "core/error.hpp"
#include "feeds/oracle_tick.hpp"
#include "feeds/vault_state.hpp"
#include "io/book_csv.hpp"
#include "kernels/live_engine.hpp"
#include "io/market_json.hpp"
#include "io/methodology_json.hpp"
#include "io/results_csv.hpp"
#include "core/limits.hpp"
#include "service/api_request.hpp"
#include "service/background_priority.hpp"
#include "service/epoch_anchorer.hpp"
#include "service/epochs.hpp"
#include "service/metrics.hpp"
#include "service/nats_client.hpp"
#include "service/partition_snapshot.hpp"
#include "service/partitions.hpp"
#include "service/stress_jobs.hpp"
#include "service/state_store.hpp"

namespace vaultrisk::service {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// JSON text that never throws: a string that is not UTF-8 (from a header, a subject)
// is written with U+FFFD in its place instead of stopping whatever was reporting it.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Never evaluated (status_at_): a first evaluation compares with healthy.
constexpr std::uint8_t kUnevaluated = 255;

std::string rfc3339_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

struct PendingTick {
  feeds::OracleTick tick;
  std::string signature;
  Clock::time_point received;
};

struct ApiRequest {
  std::string endpoint;
  std::string reply;
  std::string body;
};

// ADR-32 micro service bookkeeping for one endpoint.
struct EndpointStats {
  std::string name, subject;
  std::atomic<std::uint64_t> requests{0}, errors{0}, nanos{0};
  std::mutex last_error_mu;
  std::string last_error;
};

// What a snapshot's meta.json holds. Copied on the engine thread, where it must be
// cheap (plain values; the seen ids share their chunks); made JSON by the snapshot's
// writer, off the engine thread: at 100k accounts, building the JSON of 13k statuses
// there took 13-22 ms, and a tick waited for it.
struct MetaState {
  std::uint64_t vault_seq = 0, epoch = 0, next_nonce = 0;
  std::int64_t epoch_started_ms = 0;
  std::string instance;
  std::vector<chain::Hash32> epoch_intents;
  std::vector<std::pair<std::string, std::pair<std::string, std::string>>> ticks;  // underlying -> body, signature
  std::vector<std::pair<std::uint64_t, std::uint8_t>> statuses;                   // non-healthy only
  std::vector<std::pair<std::uint64_t, std::int64_t>> intents;                     // account -> deadline
  feeds::SeenIds::View seen;

  json to_json() const {
    json t = json::object();
    for (const auto& [u, bs] : ticks) t[u] = {{"body", bs.first}, {"signature", bs.second}};
    json st = json::array();
    for (const auto& [a, v] : statuses) st.push_back({std::to_string(a), v});
    json in = json::object();
    for (const auto& [a, d] : intents) in[std::to_string(a)] = d;
    json ei = json::array();
    for (const auto& d : epoch_intents) ei.push_back(chain::to_hex(d));
    json sn = json::array();
    seen.for_each([&](const std::string& id) { sn.push_back(id); });
    return {{"vault_seq", vault_seq}, {"epoch", epoch}, {"epoch_started_ms", epoch_started_ms}, {"instance", instance},
            {"next_nonce", next_nonce},  // every nonce below it may have been used
            {"epoch_intents", std::move(ei)},
            {"ticks", std::move(t)}, {"statuses", std::move(st)}, {"intents", std::move(in)}, {"seen", std::move(sn)}};
  }
};

class Service {
 public:
  Service(const ServeConfig& c, const PartitionRole* role);
  ~Service();
  int run(std::atomic<bool>& stop);

 private:
  void log(const char* fmt, ...) const;
  void recover();
  void apply_record(const json& r);
  void rebuild_engine();
  bool grow_accounts();
  json layout_health() const;
  void on_tick(const Message& m);
  void vault_loop(std::atomic<bool>& stop);
  void process_vault_batch();
  void check_listing(const feeds::VaultEvent& e) const;
  void guarded(const char* stage, const std::function<void()>& step);
  void process_ticks();
  void evaluate(bool full, std::optional<Clock::time_point> tick_time);
  void emit_intent(const AccountChange& account);  // its numbers as of now
  chain::Hash32 market_digest(const std::vector<std::int32_t>& unds) const;
  json tick_seqs(const std::vector<std::int32_t>& unds) const;
  void reject(const std::string& source, const std::string& reason, std::string_view subject, const std::string& detail);
  void serve_api(const ApiRequest& r);
  void setup_micro();
  MetaState meta_state() const;
  json meta() const { return meta_state().to_json(); }
  void maybe_snapshot(bool force);
  void maybe_roll_epoch();
  // Cluster only (role_ set).
  std::uint64_t wall_epoch(std::int64_t ms) const { return static_cast<std::uint64_t>(ms / (cfg_.epoch_seconds * 1000)); }
  void publish_epoch_part(const EpochCapture& c);
  void offer_nats_snapshot(bool wait);
  std::size_t store_nats_snapshot(const Book& book, const json& meta);
  void nats_snapshot_loop();
  int run_partition_loop(std::atomic<bool>& stop);
  void start_valuing();
  void engine_pass();
  std::uint64_t last_published_nonce();
  EndpointStats& endpoint(const std::string& name);

  ServeConfig cfg_;
  const PartitionRole* role_;  // set: one partition of a cluster (SPEC §9)
  Methodology methodology_;
  StateStore store_;
  EpochStore epochs_;
  std::unique_ptr<Metrics> own_metrics_;
  Metrics& metrics_;
  std::unique_ptr<NatsClient> nats_;
  // A takeover's durable consumer, created while its state is read (declared after
  // nats_, so that it is waited for before the connection goes).
  std::future<void> consumer_early_;
  std::uint64_t consumer_early_seq_ = 0;
  std::unique_ptr<feeds::TickValidator> validator_;
  std::unique_ptr<chain::Signer> signer_;
  std::unique_ptr<EpochAnchorer> anchorer_;
  std::unique_ptr<StressJobs> stress_jobs_;
  chain::Eip712Domain domain_;
  std::string service_id_;
  std::string started_;

  // Engine-thread state.
  feeds::VaultState vault_;
  std::unique_ptr<LiveEngine> engine_;
  std::map<std::string, UnderlyingMarket> market_;           // by underlying
  std::map<std::string, std::string> market_body_;           // exact bytes behind each market (tick or initial)
  std::map<std::string, std::pair<std::uint64_t, std::string>> last_tick_;  // seq, signature
  std::unordered_map<std::uint64_t, std::uint8_t> published_;  // account id -> last alerted status
  std::unordered_map<std::uint64_t, std::int64_t> intent_deadline_;  // account id -> deadline (s)
  // The same two, aligned with the book's accounts for the per-tick scan (no hashing
  // per account on the hot path); rebuilt from the maps whenever the book changes.
  std::vector<std::uint8_t> status_at_;    // 3 = never evaluated
  std::vector<std::int64_t> deadline_at_;  // 0 = no live intent
  // The engine's side of the change scan: the status the engine last reported per
  // account (its own copy sits where it runs), the counts of each, the accounts
  // whose alert failed (retried at the next evaluation), and when each account
  // alerted liquidatable is owed its next intent (earliest first; an entry that no
  // longer matches the account's status or deadline is dropped when it comes up), so
  // that an evaluation looks only at the intents falling due, never at every account.
  std::vector<std::uint8_t> reported_;
  std::size_t status_count_[4] = {0, 0, 0, 0};
  std::vector<std::int32_t> retry_;
  using IntentDue = std::pair<std::int64_t, std::int32_t>;  // (deadline in s, 0: now; account)
  std::priority_queue<IntentDue, std::vector<IntentDue>, std::greater<>> intents_due_;
  std::uint64_t vault_seq_ = 0;
  std::uint64_t next_nonce_ = 0;
  std::uint64_t nonce_ceiling_ = 0;  // nonces below this are reserved durably
  std::uint64_t nonce_floor_ = 0;    // 1 + the largest nonce the snapshot and WAL record
  std::size_t intents_logged_ = 0;   // per evaluation, to keep the log readable
  std::uint64_t epoch_ = 1;
  std::int64_t epoch_started_ms_ = 0;
  std::vector<chain::Hash32> epoch_intents_;  // digests of the intents signed in the open epoch
  bool epoch_waiting_logged_ = false;
  Clock::time_point last_snapshot_ = Clock::now();
  std::uint64_t events_since_snapshot_ = 0;  // vault events applied since the last snapshot
  static constexpr std::uint64_t kMinSnapshotWalBytes = 4 << 20;  // a small book's WAL still waits for 4 MiB
  Clock::time_point last_sweep_ = Clock::now();
  bool need_full_ = true;
  bool need_scan_ = false;  // statuses may have changed without a tick (cash updates)

  // Shared with callbacks / the vault thread.
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, PendingTick> pending_ticks_;
  std::vector<JsMessage> pending_events_;
  std::deque<ApiRequest> pending_api_;
  std::mutex validator_mu_;
  std::vector<std::unique_ptr<EndpointStats>> endpoints_;

  // Cluster: the partition's state in NATS, written by its own thread.
  std::mutex snap_mu_;
  std::condition_variable snap_cv_;
  std::optional<std::pair<Book, MetaState>> snap_offer_;
  bool snap_stop_ = false, snap_busy_ = false;
  std::thread snap_thread_;
  Clock::time_point last_nats_snapshot_{};
  std::uint64_t nats_snapshot_seq_ = 0, nats_snapshot_alerts_ = 0, alerts_total_ = 0;
  bool first_evaluation_ = true;
  Clock::time_point started_at_ = Clock::now();
};

Service::Service(const ServeConfig& c, const PartitionRole* role)
    : cfg_(c), role_(role), methodology_(c.config_file.empty() ? default_methodology() : io::load_methodology(c.config_file)),
      store_(c.state_dir, c.fresh_state, [this](const std::string& m) { log("%s", m.c_str()); }), epochs_(c.state_dir),
      own_metrics_(role ? nullptr : std::make_unique<Metrics>(c.metrics_port, c.metrics_bind)),
      metrics_(role ? *role->metrics : *own_metrics_) {
  feeds::TickValidatorConfig vc;
  for (const auto& s : c.oracle_signers) vc.signers.insert(chain::address_from_hex(s));
  if (vc.signers.empty()) throw input_error("--oracle-signers: at least one oracle address is required");
  vc.max_age_ms = c.max_tick_age_ms;
  validator_ = std::make_unique<feeds::TickValidator>(vc);
  if (c.signing_key_file.empty()) throw input_error("--signing-key: a key file is required to sign intents");
  signer_ = std::make_unique<chain::Signer>(chain::read_key_file(c.signing_key_file));
  domain_.chain_id = c.chain_id;
  domain_.verifying_contract = chain::address_from_hex(c.verifying_contract);
  char id[24];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(now_ms() ^ (static_cast<std::int64_t>(::getpid()) << 40)));
  service_id_ = id;
  started_ = rfc3339_now();
  // The WAL is synced on its own thread; a slow sync is said, since the disk is slow.
  store_.on_wal_synced([this](double seconds, std::size_t bytes) {
    metrics_.wal_sync(seconds);
    if (seconds >= 0.1)
      log("write-ahead log: fdatasync of %zu bytes took %.0f ms (on the WAL's thread: ticks went on meanwhile; vault "
          "events wait for it before they are acked)", bytes, seconds * 1e3);
  });
}

Service::~Service() {
  store_.on_wal_synced({});  // the metrics may go before the store
  {
    std::lock_guard<std::mutex> lock(snap_mu_);
    snap_stop_ = true;
  }
  snap_cv_.notify_all();
  if (snap_thread_.joinable()) snap_thread_.join();
  // The NATS handlers push into members declared after nats_ (destroyed first): stop
  // them before anything else goes. A cluster stops and restarts partitions in a
  // live process, so this is not only the process's exit.
  if (nats_) nats_->stop_handlers();
  stress_jobs_.reset();
  anchorer_.reset();
  nats_.reset();
}

void Service::log(const char* fmt, ...) const {
  if (cfg_.quiet) return;
  std::va_list args;
  va_start(args, fmt);
  if (role_)
    std::fprintf(stderr, "[vaultrisk serve %s p%u] ", cfg_.instance.c_str(), role_->partition);
  else
    std::fprintf(stderr, "[vaultrisk serve] ");
  std::vfprintf(stderr, fmt, args);
  std::fputc('\n', stderr);
  va_end(args);
}

MetaState Service::meta_state() const {
  MetaState m;
  m.vault_seq = vault_seq_, m.epoch = epoch_, m.epoch_started_ms = epoch_started_ms_, m.instance = cfg_.instance;
  m.next_nonce = nonce_ceiling_;
  m.epoch_intents = epoch_intents_;
  for (const auto& [u, t] : last_tick_) m.ticks.push_back({u, {market_body_.at(u), t.second}});
  m.statuses.reserve(published_.size());
  for (const auto& [a, s] : published_)
    if (s) m.statuses.emplace_back(a, s);
  m.intents.assign(intent_deadline_.begin(), intent_deadline_.end());
  m.seen = vault_.seen_ids();
  return m;
}

void Service::apply_record(const json& r) {
  const std::string t = r.at("t");
  if (t == "event") {
    vault_seq_ = std::max<std::uint64_t>(vault_seq_, r.at("seq"));
    try {
      vault_.apply(feeds::parse_vault_event(r.at("subject").get<std::string>(), r.at("body").get<std::string>()));
    } catch (const input_error& e) {
      // Recorded by an older vaultrisk, before the numeric domain refused it: skipped
      // now, as it would be rejected today.
      log("write-ahead event at stream sequence %llu no longer applies (skipped): %s",
          static_cast<unsigned long long>(r.at("seq").get<std::uint64_t>()), e.what());
    }
  } else if (t == "seq") {
    vault_seq_ = std::max<std::uint64_t>(vault_seq_, r.at("seq"));
  } else if (t == "tick") {
    const feeds::OracleTick tick = feeds::decode_tick(r.at("body").get<std::string>());
    market_[tick.underlying] = tick.market;
    market_body_[tick.underlying] = tick.body;
    last_tick_[tick.underlying] = {tick.seq, r.at("sig").get<std::string>()};
    validator_->restore(tick.underlying, tick.seq);
  } else if (t == "status") {
    published_[std::stoull(r.at("account").get<std::string>())] = r.at("status").get<std::uint8_t>();
  } else if (t == "intent") {
    intent_deadline_[std::stoull(r.at("account").get<std::string>())] = r.at("deadline");
    if (r.contains("nonce")) nonce_floor_ = std::max(nonce_floor_, r["nonce"].get<std::uint64_t>() + 1);
    if (r.value("epoch", 0ull) == epoch_ && r.contains("digest"))
      epoch_intents_.push_back(chain::hash_from_hex(r["digest"].get<std::string>()));
  } else if (t == "clear_intent") {
    intent_deadline_.erase(std::stoull(r.at("account").get<std::string>()));
  } else if (t == "epoch") {
    epoch_ = r.at("epoch");
    epoch_started_ms_ = r.at("started_ms");
    epoch_intents_.clear();
  }
}

void Service::recover() {
  Book book;
  json m;
  const bool had_snapshot = store_.has_snapshot();
  bool restored = had_snapshot;
  if (had_snapshot) {
    store_.load_snapshot(book, m);
  } else if (role_) {
    // A partition taken over: its state from NATS alone (SPEC §9), never from disk.
    const auto t0 = Clock::now();
    // The head names the VAULT sequence the state covers: the consumer from there is
    // created (a round of consensus on an R3 stream) while the chunks are read.
    const auto early = [this](std::uint64_t vault_seq) {
      if (consumer_early_.valid()) return;
      consumer_early_seq_ = vault_seq + 1;
      consumer_early_ = std::async(std::launch::async, [this, from = vault_seq + 1] {
        nats_->create_pull_consumer("VAULT", "vault.event.>", "vaultrisk-p" + std::to_string(role_->partition), from);
      });
    };
    if (const auto blob = get_partition_snapshot(*nats_, role_->partition, early)) {
      const auto t1 = Clock::now();
      decode_partition_snapshot(*blob, book, m, std::string(kSnapshotStream) + " partition " + std::to_string(role_->partition));
      restored = true;
      const auto ms = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
      log("partition state from NATS: %zu bytes, written by %s (%.0f ms after the start, %.0f ms to read and check, "
          "%.0f ms to decode)", blob->size(), m.value("instance", std::string("?")).c_str(), ms(started_at_, t0), ms(t0, t1),
          ms(t1, Clock::now()));
    }
  }
  if (restored) {
    nonce_floor_ = std::max<std::uint64_t>(nonce_floor_, m.value("next_nonce", 0ull));
    vault_ = feeds::VaultState(std::move(book));
    vault_seq_ = m.value("vault_seq", 0ull);
    epoch_ = m.value("epoch", 1ull);
    epoch_started_ms_ = m.value("epoch_started_ms", 0ll);
    // Named locals: items() of a temporary would dangle in a range-for before C++23.
    const json seen = m.value("seen", json::array()), statuses = m.value("statuses", json::array());
    const json intents = m.value("intents", json::object()), ticks = m.value("ticks", json::object());
    const json epoch_intents = m.value("epoch_intents", json::array());
    for (const auto& d : epoch_intents) epoch_intents_.push_back(chain::hash_from_hex(d.get<std::string>()));
    for (const auto& id : seen) vault_.mark_seen(id.get<std::string>());
    for (const auto& s : statuses) published_[std::stoull(s[0].get<std::string>())] = s[1].get<std::uint8_t>();
    for (const auto& [a, d] : intents.items()) intent_deadline_[std::stoull(a)] = d.get<std::int64_t>();
    for (const auto& [u, t] : ticks.items())
      apply_record({{"t", "tick"}, {"body", t.at("body")}, {"sig", t.at("signature")}});
    log("restored snapshot: %zu accounts, %zu positions, vault seq %llu, epoch %llu", vault_.book().account_count(),
        vault_.book().position_count(), static_cast<unsigned long long>(vault_seq_), static_cast<unsigned long long>(epoch_));
  } else if (!cfg_.book_dir.empty()) {
    Book initial = io::load_book(cfg_.book_dir);
    // A cluster's first start: each partition keeps its own accounts of the seed book.
    vault_ = feeds::VaultState(role_ ? partition_book(initial, role_->partition, role_->partitions) : std::move(initial));
    log("initial book %s: %zu instruments, %zu accounts, %zu positions", cfg_.book_dir.c_str(),
        vault_.book().instrument_count(), vault_.book().account_count(), vault_.book().position_count());
  }
  std::size_t replayed = 0;
  store_.replay([&](const json& r) {
    apply_record(r);
    ++replayed;
  });
  if (replayed) log("replayed %zu write-ahead records", replayed);
  if (role_) {
    // Nonces come from the instance's signer (cluster NonceSource); epochs are the
    // cluster's, numbered by the wall clock so that every partition agrees.
    const std::int64_t now = now_ms();
    const std::uint64_t e = wall_epoch(now);
    if (epoch_ != e) epoch_intents_.clear();
    epoch_ = e;
    epoch_started_ms_ = static_cast<std::int64_t>(e) * cfg_.epoch_seconds * 1000;
    nats_snapshot_seq_ = vault_seq_;
    // The local dir is never read back in a cluster (a takeover starts from NATS), so
    // no base snapshot is written there now: on 2 cores, formatting 4 partitions'
    // books beside their first valuations added up to a second to a takeover. The
    // first local one comes with the usual cadence (a minute, or snapshot_every).
    last_snapshot_ = Clock::now();
    return;
  }
  // Everything below the high-water mark may have been used before a crash: start at it.
  // The mark is the largest of every durable record of it, so that a damaged nonce
  // file alone can never make a nonce repeat.
  const auto file = store_.load_nonce();
  const std::uint64_t from_stream = last_published_nonce();
  next_nonce_ = nonce_ceiling_ = std::max({file.value_or(0), nonce_floor_, from_stream});
  if (!file || *file < next_nonce_)
    log("nonce high-water mark %llu (nonce file %s, WAL and snapshot %llu, INTENTS stream %llu)",
        static_cast<unsigned long long>(next_nonce_), file ? std::to_string(*file).c_str() : "missing or damaged",
        static_cast<unsigned long long>(nonce_floor_), static_cast<unsigned long long>(from_stream));
  // An "epoch" record lost with a damaged WAL tail must not reopen an epoch already captured.
  if (const auto captured = epochs_.captured(); !captured.empty() && captured.back() >= epoch_) {
    log("epoch %llu was already captured: continuing with epoch %llu", static_cast<unsigned long long>(epoch_),
        static_cast<unsigned long long>(captured.back() + 1));
    epoch_ = captured.back() + 1;
    epoch_started_ms_ = 0;
    epoch_intents_.clear();
  }
  if (!epoch_started_ms_) epoch_started_ms_ = now_ms();
  // From the first start on, the state dir alone is enough to recover: --book is
  // only a seed, so the book it gave must be durable before any event builds on it.
  if (!had_snapshot) store_.snapshot(vault_.book(), meta());
}

// 1 + the nonce of the last intent of ours on the INTENTS stream (0 when none).
std::uint64_t Service::last_published_nonce() {
  const auto body = nats_->js_get_last("INTENTS", "sequencer.intent.liquidation");
  if (!body) return 0;
  try {
    const json j = json::parse(*body);
    if (j.at("signer").get<std::string>() != chain::to_hex(signer_->address())) return 0;
    return std::stoull(j.at("intent").at("nonce").get<std::string>()) + 1;
  } catch (const std::exception& e) {
    log("the last intent on INTENTS does not parse (%s): not used for the nonce high-water mark", e.what());
    return 0;
  }
}

void Service::rebuild_engine() {
  const Book& book = vault_.book();
  engine_.reset();
  vault_.take_structural_change();  // laid out from the book as it is now
  vault_.take_touched();
  if (book.instrument_count() == 0) return;
  for (const auto& u : book.underlyings)
    if (!market_.count(u)) {
      log("waiting for a market for %s before valuing the book", u.c_str());
      return;
    }
  const auto t0 = Clock::now();
  Market m;
  for (const auto& [u, um] : market_) m.underlyings[u] = um;
  std::unique_ptr<LiveEngine> engine;
  try {
    LiveEngineOptions opt;
    opt.on_background_thread = lower_this_thread_priority;  // a merge never holds back ticks
    opt.merge_accounts = cfg_.merge_accounts;
    opt.merge_after_s = cfg_.merge_after_s;
    engine = std::make_unique<LiveEngine>(book, methodology_, cfg_.device, m, opt);
  } catch (const input_error& e) {
    // E.g. a new listing whose expiry has no smile yet: value nothing (and alert
    // nothing) until a tick makes the market usable again.
    log("not valuing the book until the market can value it: %s", e.what());
    return;
  }
  engine_ = std::move(engine);
  // The per-account state of the scan, every account's set again as grow_accounts()
  // sets an opened one's.
  status_at_.clear();
  deadline_at_.clear();
  reported_.clear();
  std::fill(std::begin(status_count_), std::end(status_count_), 0);
  intents_due_ = {};
  retry_.clear();  // their alerts are still owed: status_at_ differs, so the scan finds them again
  grow_accounts();
  engine_->set_reported_statuses(reported_);
  metrics_.revaluation(std::chrono::duration<double>(Clock::now() - t0).count(), true);
  log("engine on %s: %zu accounts, %lld blocks (%.1f ms)", engine_->device_name().c_str(), book.account_count(),
      static_cast<long long>(engine_->block_count()), std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
}

void Service::reject(const std::string& source, const std::string& reason, std::string_view subject, const std::string& detail) {
  json j = {{"reason", reason}, {"subject", std::string(subject)}, {"detail", detail}};
  try {
    nats_->publish("risk.reject." + source, dump(j));
  } catch (const std::exception& e) {
    log("cannot publish reject: %s", e.what());
  }
}

void Service::on_tick(const Message& m) {
  const auto received = Clock::now();
  const auto sig = m.header("Vaultrisk-Signature");
  std::variant<feeds::OracleTick, feeds::TickRejection> r;
  {
    std::lock_guard<std::mutex> lock(validator_mu_);
    r = validator_->check(m.subject(), m.data(), sig, now_ms());
    if (auto* t = std::get_if<feeds::OracleTick>(&r)) validator_->accept(*t);  // seq is spent even if coalesced
  }
  if (auto* rej = std::get_if<feeds::TickRejection>(&r)) {
    metrics_.tick_rejected(rej->reason);
    reject("oracle", rej->reason, m.subject(), rej->detail);
    return;
  }
  auto& tick = std::get<feeds::OracleTick>(r);
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string u = tick.underlying;
    pending_ticks_[u] = PendingTick{std::move(tick), std::string(*sig), received};  // latest per underlying wins
  }
  cv_.notify_one();
}

void Service::vault_loop(std::atomic<bool>& stop) {
  while (!stop) {
    try {
      auto msgs = nats_->fetch(256, 200);
      metrics_.nats_dropped(static_cast<double>(nats_->dropped()));
      if (msgs.empty()) continue;
      metrics_.consumer_lag(static_cast<double>(msgs.back().pending));
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& m : msgs) pending_events_.push_back(m);
      }
      cv_.notify_one();
    } catch (const std::exception& e) {
      log("vault fetch: %s (retrying)", e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
}

void Service::process_vault_batch() {
  std::vector<JsMessage> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(pending_events_);
  }
  if (batch.empty()) return;
  std::vector<const JsMessage*> to_ack, to_term;
  bool skipped = false;  // events of other partitions passed over (cluster)
  for (const JsMessage& jm : batch) {
    const Message m = jm.view();
    if (jm.stream_seq && jm.stream_seq <= vault_seq_) {  // applied before a restart: just ack
      to_ack.push_back(&jm);
      continue;
    }
    if (role_) {
      // Every partition reads the whole stream in order (listings are for all of them,
      // and must come before the trades that use them); each applies its own accounts.
      const SubjectPartition sp = subject_partition(m.subject(), role_->partitions);
      const bool mine = sp.bad ? role_->partition == 0 : !sp.partition || *sp.partition == role_->partition;
      if (!mine) {
        to_ack.push_back(&jm);
        vault_seq_ = std::max(vault_seq_, jm.stream_seq);
        skipped = true;
        continue;
      }
      if (sp.bad) {  // rejected once, by partition 0
        static std::atomic<bool> told{false};
        if (!told.exchange(true))
          log("vault event %s: its partition token is not partition(%u, account): does the nats-server mapping "
              "(deploy/nats/partitions.conf) use the same P as --partitions? (rejected; said once)",
              std::string(m.subject()).c_str(), role_->partitions);
        metrics_.vault_event("rejected");
        reject("vault", "invalid_event", m.subject(),
               "subject: the account token must be canonical decimal and its partition token must be partition(" +
                   std::to_string(role_->partitions) + ", account)");
        store_.append({{"t", "seq"}, {"seq", jm.stream_seq}});
        to_term.push_back(&jm);
        vault_seq_ = std::max(vault_seq_, jm.stream_seq);
        continue;
      }
    }
    // Each event is applied whole or not at all, and every event is acked or termed:
    // none is left for a redelivery that vault_seq_ would then skip.
    const char* reason = nullptr;
    std::string detail;
    try {
      if (m.data().size() > limits::kMaxEventBytes)
        throw input_error("body is " + std::to_string(m.data().size()) + " bytes (max " + std::to_string(limits::kMaxEventBytes) + ")");
      const auto e = feeds::parse_vault_event(m.subject(), m.data());
      if (e.type == feeds::EventType::instrument) check_listing(e);
      // The WAL line first: an event that cannot be recorded is refused before it changes anything.
      std::string line = StateStore::encode({{"t", "event"}, {"seq", jm.stream_seq}, {"id", e.id},
                                             {"subject", std::string(m.subject())}, {"body", std::string(m.data())}});
      if (vault_.apply(e) == feeds::Applied::duplicate) {
        metrics_.vault_event("duplicate");
        store_.append({{"t", "seq"}, {"seq", jm.stream_seq}});
      } else {
        metrics_.vault_event("applied");
        store_.append_encoded(std::move(line));
        ++events_since_snapshot_;
      }
      to_ack.push_back(&jm);
    } catch (const out_of_range_error& e) {
      reason = "out_of_range", detail = e.what();
    } catch (const input_error& e) {
      reason = "invalid_event", detail = e.what();
    } catch (const std::exception& e) {  // not the event's fault, but it must not stop the others
      reason = "internal_error", detail = e.what();
      metrics_.failure("vault_event");
      log("vault event %llu could not be applied (rejected, state unchanged): %s",
          static_cast<unsigned long long>(jm.stream_seq), e.what());
    }
    if (reason) {
      metrics_.vault_event("rejected");
      reject("vault", reason, m.subject(), detail);
      store_.append({{"t", "seq"}, {"seq", jm.stream_seq}});
      to_term.push_back(&jm);  // never redeliver an event that cannot apply
    }
    vault_seq_ = std::max(vault_seq_, jm.stream_seq);
  }
  if (skipped) store_.append({{"t", "seq"}, {"seq", vault_seq_}});
  store_.sync();  // durable before acknowledging
  for (const JsMessage* m : to_ack) nats_->ack(*m);
  for (const JsMessage* m : to_term) nats_->term(*m);
  NatsClient::free(batch);
  const bool structural = vault_.take_structural_change();
  const feeds::VaultState::Touched touched = vault_.take_touched();
  if (!engine_ || need_full_) {
    if (structural || !engine_) need_full_ = true;  // nothing valued yet: lay the book out
  } else if (!touched.positions.empty() || !touched.accounts.empty() || !touched.reshaped.empty() ||
             vault_.book().account_count() > reported_.size()) {
    // Deposits, withdrawals and trades applied in place, only their blocks and
    // accounts recomputed; accounts opened and positions opened or closed are laid
    // out apart (LiveEngine), never the whole book on this path.
    const auto t0 = Clock::now();
    const bool told_before = grow_accounts();
    try {
      engine_->apply(vault_.book(), touched);
      if (told_before) engine_->set_reported_statuses(reported_);
    } catch (const std::exception& e) {  // an input error, or anything else: the engine may be partly changed
      log("a changed account cannot be valued apart (%s): laying the whole book out again", e.what());
      need_full_ = true;
      return;
    }
    metrics_.revaluation(std::chrono::duration<double>(Clock::now() - t0).count(), false);
    need_scan_ = true;
  }
}

// The live layout (LiveEngine): how many accounts are valued apart from the full
// layout, whether a background layout is being built, and how many were swapped in.
json Service::layout_health() const {
  if (!engine_) return nullptr;
  const LiveEngine::Stats st = engine_->stats();
  return {{"accounts_apart", st.dirty_accounts}, {"positions_apart", st.overlay_positions},
          {"merging", st.merging}, {"merges", st.merges}};
}

// The per-account state the scan reads, for the accounts past the end of it (all of
// them after rebuild_engine() clears it; then those opened since): the status last
// alerted and any live intent's deadline, from the durable maps, and what the change
// scan compares with (never evaluated: healthy, so that a first evaluation alerts
// what is not). True when one of them was told a status other than healthy.
bool Service::grow_accounts() {
  const Book& book = vault_.book();
  bool told_before = false;
  for (std::size_t a = reported_.size(); a < book.account_count(); ++a) {
    const auto it = published_.find(book.account_id[a]);
    status_at_.push_back(it == published_.end() ? kUnevaluated : it->second);
    const auto d = intent_deadline_.find(book.account_id[a]);
    deadline_at_.push_back(d == intent_deadline_.end() ? 0 : d->second);
    reported_.push_back(status_at_.back() == kUnevaluated ? 0 : status_at_.back());
    ++status_count_[reported_.back() & 3];
    told_before = told_before || reported_.back() != 0;
    if (status_at_.back() == static_cast<std::uint8_t>(AccountStatus::liquidatable))
      intents_due_.push({deadline_at_.back(), static_cast<std::int32_t>(a)});
  }
  return told_before;
}

// A listing the market cannot value would leave the whole book unvalued until a tick
// fixed it: it is refused instead, naming what is missing. (Its underlying must be
// priced first; an unexpired option needs its expiry's smile, w > 0 at its strike.)
void Service::check_listing(const feeds::VaultEvent& e) const {
  const auto it = market_.find(e.underlying);
  if (it == market_.end())
    throw input_error("listing '" + e.instrument_id + "': no market for " + e.underlying +
                      " yet (its first oracle tick must come before its listings)");
  if (e.kind == "option") validate_market_for_option(e.instrument_id, e.expiry, e.strike, e.underlying, it->second);
}

// One step of the loop. A failure is counted, logged with its cause and skipped: it
// never stops ticks, the API, epochs or snapshots.
void Service::guarded(const char* stage, const std::function<void()>& step) {
  try {
    step();
  } catch (const std::exception& e) {
    metrics_.failure(stage);
    log("error in %s (skipped, continuing): %s", stage, e.what());
  }
}

void Service::process_ticks() {
  std::map<std::string, PendingTick> ticks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ticks.swap(pending_ticks_);
  }
  if (ticks.empty()) return;
  std::optional<Clock::time_point> earliest;
  for (auto& [u, p] : ticks) {
    try {  // market_ changes only once the checks below have passed
      if (engine_ && !need_full_) {
        const auto t0 = Clock::now();
        engine_->update_underlying(u, p.tick.market);  // throws on an unusable smile, changing nothing
        metrics_.revaluation(std::chrono::duration<double>(Clock::now() - t0).count(), false);
      } else if (!vault_.book().underlyings.empty()) {
        // No engine to check it incrementally: check the smile against the book on
        // the host before accepting it (a full rebuild follows).
        validate_market_for_book(vault_.book(), u, p.tick.market);
        need_full_ = true;
      }
      market_[u] = p.tick.market;
      market_body_[u] = p.tick.body;
      last_tick_[u] = {p.tick.seq, p.signature};
      store_.append({{"t", "tick"}, {"body", p.tick.body}, {"sig", p.signature}});
      metrics_.tick_accepted();
      if (!earliest || p.received < *earliest) earliest = p.received;
    } catch (const input_error& e) {
      metrics_.tick_rejected("invalid_market");
      reject("oracle", "invalid_market", "oracle.tick." + u, e.what());
    }
  }
  if (need_full_) return;  // evaluate() after the rebuild reports the latency
  evaluate(false, earliest);
}

chain::Hash32 Service::market_digest(const std::vector<std::int32_t>& unds) const {
  chain::Bytes cat;
  for (std::int32_t u : unds) {  // underlying indices ascend with names: ordered by name
    const chain::Hash32 h = chain::keccak256(market_body_.at(vault_.book().underlyings[u]));
    cat.insert(cat.end(), h.begin(), h.end());
  }
  return chain::keccak256(cat);
}

json Service::tick_seqs(const std::vector<std::int32_t>& unds) const {
  json t = json::object();
  for (std::int32_t u : unds) {
    const std::string& name = vault_.book().underlyings[u];
    auto it = last_tick_.find(name);
    t[name] = it == last_tick_.end() ? 0 : it->second.first;
  }
  return t;
}

void Service::emit_intent(const AccountChange& r) {
  const std::int32_t a = r.account;
  const Book& book = vault_.book();
  const std::uint64_t account = book.account_id[a];
  chain::LiquidationIntent in;
  in.account = account;
  in.deadline = static_cast<std::uint64_t>(now_ms() / 1000 + cfg_.intent_ttl_s);
  in.epoch = epoch_;
  in.equity = r.equity;
  in.maintenance_margin = r.mm;
  in.market_digest = market_digest(engine_->account_underlyings(a));
  chain::Hash32 digest{};
  // Signs the intent for a nonce: its body and its Nats-Msg-Id (the digest).
  auto sign = [&](std::uint64_t nonce) {
    in.nonce = nonce;
    digest = chain::typed_data_digest(domain_, in);
    const chain::Signature sig = signer_->sign(digest);
    json body = {{"intent",
                  {{"account", std::to_string(in.account)}, {"nonce", std::to_string(in.nonce)},
                   {"deadline", std::to_string(in.deadline)}, {"epoch", std::to_string(in.epoch)},
                   {"equity", chain::Word::fixed18(in.equity).decimal(true)},
                   {"maintenanceMargin", chain::Word::fixed18(in.maintenance_margin).decimal(false)},
                   {"marketDigest", chain::to_hex(in.market_digest)}}},
                 {"digest", chain::to_hex(digest)},
                 {"signature", chain::to_hex(sig)},
                 {"signer", chain::to_hex(signer_->address())}};
    return std::pair<std::string, std::string>{body.dump(), chain::to_hex(digest)};
  };
  if (role_) {
    // The instance's signer is shared by its partitions: nonce, signature and publication
    // under its lock, on its connection, so that INTENTS holds them in nonce order.
    role_->nonces->publish_intent(sign);
  } else {
    // The nonce is reserved durably before the intent exists anywhere else, in blocks
    // so that a burst of intents costs one fsync: after kill -9 the unused rest of a
    // block is skipped, never reused.
    if (next_nonce_ >= nonce_ceiling_) {
      nonce_ceiling_ = next_nonce_ + 1024;
      store_.store_nonce(nonce_ceiling_);
    }
    const auto [body, id] = sign(next_nonce_++);
    nats_->js_publish_async("sequencer.intent.liquidation", body, id);
  }
  intent_deadline_[account] = static_cast<std::int64_t>(in.deadline);
  deadline_at_[a] = static_cast<std::int64_t>(in.deadline);
  intents_due_.push({deadline_at_[a], a});  // the next one falls due when this one expires
  epoch_intents_.push_back(digest);
  store_.append({{"t", "intent"}, {"account", std::to_string(account)}, {"deadline", in.deadline}, {"nonce", in.nonce},
                 {"epoch", in.epoch}, {"digest", chain::to_hex(digest)}});
  metrics_.intent();
  if (++intents_logged_ <= 5) log("intent for account %llu: nonce %llu, equity %.2f < mm %.2f, deadline %llu", static_cast<unsigned long long>(account),
      static_cast<unsigned long long>(in.nonce), in.equity, in.maintenance_margin,
      static_cast<unsigned long long>(in.deadline));
}

void Service::evaluate(bool full, std::optional<Clock::time_point> tick_time) {
  if (!engine_) return;
  need_scan_ = false;
  const Book& book = vault_.book();
  const std::int64_t now = now_ms(), now_s = now / 1000;
  std::size_t alerts = 0;
  std::vector<std::int32_t> due;  // accounts owed a (new) intent
  intents_logged_ = 0;
  // The accounts whose status changed, found where the engine runs (on the GPU: a
  // device-side compaction and one copy), plus those whose alert failed last time.
  std::vector<AccountChange> changes = engine_->take_status_changes();
  for (const AccountChange& c : changes) {
    --status_count_[reported_[c.account] & 3];
    ++status_count_[c.status & 3];
    reported_[c.account] = c.status;
  }
  if (!retry_.empty()) {
    std::sort(retry_.begin(), retry_.end());
    retry_.erase(std::unique(retry_.begin(), retry_.end()), retry_.end());
    std::vector<std::int32_t> again;
    for (std::int32_t a : retry_)
      if (!std::any_of(changes.begin(), changes.end(), [a](const AccountChange& c) { return c.account == a; })) again.push_back(a);
    retry_.clear();
    for (const AccountChange& c : engine_->accounts(again)) changes.push_back(c);
  }
  constexpr auto kLiquidatable = static_cast<std::uint8_t>(AccountStatus::liquidatable);
  for (const AccountChange& c : changes) {
    const std::int32_t a = c.account;
    const std::uint8_t s = c.status;
    const std::uint8_t prev = status_at_[a] == kUnevaluated ? 0 : status_at_[a];  // a first evaluation compares with healthy
    if (s == prev) {  // back where it was alerted last: nothing to say
      status_at_[a] = s;
      if (s == kLiquidatable) intents_due_.push({deadline_at_[a], a});  // its intents are owed again
      continue;
    }
    const std::uint64_t id = book.account_id[a];
    try {
      const auto unds = engine_->account_underlyings(a);
      json alert = {{"account", id},
                    {"status", io::status_name(s)},
                    {"prev_status", io::status_name(prev)},
                    {"equity", c.equity},
                    {"mm", c.mm},
                    {"im", c.im},
                    {"mm_surplus", c.mm_surplus},
                    {"im_surplus", c.im_surplus},
                    {"epoch", epoch_},
                    {"time_ms", now},
                    {"ticks", tick_seqs(unds)}};
      nats_->publish(std::string("risk.alert.") + io::status_name(s) + "." + std::to_string(id), alert.dump());
      store_.append({{"t", "status"}, {"account", std::to_string(id)}, {"status", s}});
      metrics_.alert();
      ++alerts;
    } catch (const std::exception& e) {  // this account's alert: counted, logged, retried at the next evaluation
      metrics_.failure("alert");
      log("alert for account %llu failed (will retry): %s", static_cast<unsigned long long>(id), e.what());
      retry_.push_back(a);
      continue;
    }
    published_[id] = s;
    status_at_[a] = s;
    if (s == kLiquidatable) {
      intents_due_.push({deadline_at_[a], a});
    } else {
      if (deadline_at_[a]) {
        deadline_at_[a] = 0;
        intent_deadline_.erase(id);
        store_.append({{"t", "clear_intent"}, {"account", std::to_string(id)}});
      }
    }
  }
  // Intents: every account alerted liquidatable and still so, with no live intent
  // (just alerted, or its last intent's deadline passed).
  while (!intents_due_.empty() && intents_due_.top().first <= now_s) {
    const auto [d, a] = intents_due_.top();
    intents_due_.pop();
    if (d != deadline_at_[a] || status_at_[a] != kLiquidatable) continue;  // stale: superseded, or no longer liquidatable
    if (reported_[a] == kLiquidatable) due.push_back(a);
    // (alerted liquidatable, now something else: its change is alerted first, and
    // it is queued again if it comes back)
  }
  std::sort(due.begin(), due.end());
  due.erase(std::unique(due.begin(), due.end()), due.end());
  const std::size_t* count = status_count_;
  // Alerts first: they are what liquidators wait for. Intents (JetStream, acked
  // publishes) follow without holding the alerts back.
  if (alerts) nats_->flush();
  if (tick_time && alerts) metrics_.tick_to_alert(std::chrono::duration<double>(Clock::now() - *tick_time).count());
  const std::vector<AccountChange> due_rows = due.empty() ? std::vector<AccountChange>{} : engine_->accounts(due);
  for (const AccountChange& row : due_rows) {
    const std::int32_t a = row.account;
    try {
      emit_intent(row);
    } catch (const std::exception& e) {  // one account's intent never holds back the others'
      metrics_.failure("intent");
      log("intent for account %llu failed (will retry): %s", static_cast<unsigned long long>(book.account_id[a]), e.what());
      intents_due_.push({deadline_at_[a], a});  // due again at the next evaluation
    }
  }
  if (!due.empty()) {  // every intent stored by JetStream before we go on
    if (role_) role_->nonces->wait(30000);
    else nats_->js_wait(30000);
  }
  // Statuses and ticks go to the WAL on its own thread: what was published already
  // left, and a lost record only means an alert sent again after a crash. The next
  // tick does not wait for this one's fdatasync (p50 0.5 ms, up to 20 ms while a
  // snapshot is written back); vault events wait for it before they are acked.
  store_.commit_async();
  const char* const names[4] = {"healthy", "margin_call", "liquidatable", "error"};
  for (int s = 0; s < 4; ++s) {
    if (role_) metrics_.accounts(names[s], static_cast<double>(count[s]), role_->partition);  // per partition
    else metrics_.accounts(names[s], static_cast<double>(count[s]));
  }
  if (role_ && first_evaluation_ && role_->ready)
    role_->ready(std::chrono::duration<double>(Clock::now() - started_at_).count(), alerts);
  first_evaluation_ = false;
  alerts_total_ += alerts;
  if (count[3]) log("%zu accounts quarantined (status error: a value is not finite)", count[3]);
  if (alerts || full)
    log("%s revaluation: %zu healthy, %zu margin_call, %zu liquidatable; %zu alerts, %zu intents",
        full ? "full" : "incremental", count[0], count[1], count[2], alerts, intents_logged_);
}

void Service::maybe_snapshot(bool force) {
  if (role_) offer_nats_snapshot(force);
  if (force) {
    store_.snapshot(vault_.book(), meta());
    last_snapshot_ = Clock::now();
    events_since_snapshot_ = 0;
    return;
  }
  // Nothing to copy while the last one is still being written (the copy would be
  // thrown away: at 100k accounts, 1 ms of the engine thread each pass for seconds).
  if (store_.snapshot_writing()) return;
  // Due after --snapshot-every vault events (what changes the book), once the WAL
  // is as large as the last snapshot (replaying it would then cost the order of a
  // load of the snapshot, not many times it), or after a minute with anything in the WAL. Ticks and
  // statuses alone are small records: at 100k accounts, counting them as records
  // rewrote the 34 MB book for every 1 MB of WAL.
  const std::uint64_t wal_bytes = store_.wal_bytes();
  const char* why = nullptr;
  if (events_since_snapshot_ >= cfg_.snapshot_every) why = "vault events";
  else if (wal_bytes >= std::max<std::uint64_t>(store_.last_snapshot_bytes(), kMinSnapshotWalBytes)) why = "WAL as large as the last snapshot";
  else if (store_.wal_records() && Clock::now() - last_snapshot_ >= std::chrono::seconds(60)) why = "a minute";
  if (!why) return;
  const std::uint64_t wal_records = store_.wal_records();
  // Copies the book into the last snapshot's memory and the meta's state; the files
  // (and the meta's JSON) are written in the background.
  if (!store_.snapshot_async(vault_.book(), [m = meta_state()] { return m.to_json(); })) return;
  log("snapshot due (%s): %llu vault events and %llu WAL records (%llu bytes) since the last one; writing it in the "
      "background", why, static_cast<unsigned long long>(events_since_snapshot_),
      static_cast<unsigned long long>(wal_records), static_cast<unsigned long long>(wal_bytes));
  last_snapshot_ = Clock::now();
  events_since_snapshot_ = 0;
}

void Service::offer_nats_snapshot(bool wait) {
  if (!wait) {
    if (Clock::now() - last_nats_snapshot_ < std::chrono::milliseconds(cfg_.snapshot_ms)) return;
    if (vault_seq_ == nats_snapshot_seq_ && alerts_total_ == nats_snapshot_alerts_) return;  // nothing new to keep
  }
  // Once the lease may have passed, the new owner's state is the newer one: leave it be.
  if (!role_->owned()) return;
  if (wait) {  // the last one, when the partition is handed over or the instance stops
    std::unique_lock<std::mutex> lock(snap_mu_);
    snap_cv_.wait(lock, [&] { return !snap_busy_ && !snap_offer_; });
    lock.unlock();
    const std::size_t n = store_nats_snapshot(vault_.book(), meta());
    log("partition state stored in NATS for the next owner: %zu bytes, vault seq %llu", n,
        static_cast<unsigned long long>(vault_seq_));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(snap_mu_);
    if (snap_busy_ || snap_offer_) return;  // the previous one is still being written
    snap_offer_.emplace(vault_.book(), meta_state());  // a copy: made JSON and written off the engine thread
  }
  snap_cv_.notify_all();
  last_nats_snapshot_ = Clock::now();
  nats_snapshot_seq_ = vault_seq_;
  nats_snapshot_alerts_ = alerts_total_;
}

// The partition's state as of `meta`, sealed, in NATS; returns its size.
std::size_t Service::store_nats_snapshot(const Book& book, const json& meta) {
  const std::size_t n = put_partition_snapshot(*nats_, role_->partition, encode_partition_snapshot(book, meta),
                                               meta.value("vault_seq", 0ull), cfg_.instance);
  metrics_.snapshot_published(static_cast<double>(n));
  return n;
}

void Service::nats_snapshot_loop() {
  lower_this_thread_priority();  // encoding the partition's book never takes a core from the engine thread
  for (;;) {
    std::pair<Book, MetaState> job;
    {
      std::unique_lock<std::mutex> lock(snap_mu_);
      snap_cv_.wait(lock, [&] { return snap_stop_ || snap_offer_; });
      if (!snap_offer_) return;
      job = std::move(*snap_offer_);
      snap_offer_.reset();
      snap_busy_ = true;
    }
    try {
      store_nats_snapshot(job.first, job.second.to_json());
    } catch (const std::exception& e) {
      metrics_.failure("partition_snapshot");
      log("partition snapshot to NATS failed (the next one retries): %s", e.what());
    }
    {
      std::lock_guard<std::mutex> lock(snap_mu_);
      snap_busy_ = false;
    }
    snap_cv_.notify_all();
  }
}

// The partition's share of a cluster epoch (SPEC §9): its accounts' leaf values and
// its intents, on EPOCH_PARTS, for the anchorer to join into one state root.
void Service::publish_epoch_part(const EpochCapture& c) {
  const std::string base = "vaultrisk.part." + std::to_string(c.epoch) + ".p" + std::to_string(role_->partition);
  const std::size_t n = c.account.size(), chunks = (n + kLeavesPerChunk - 1) / kLeavesPerChunk;
  for (std::size_t k = 0; k < chunks; ++k) {
    const std::size_t lo = k * kLeavesPerChunk, hi = std::min(n, lo + kLeavesPerChunk);
    auto slice = [&](const auto& v) { return json(std::vector<std::decay_t<decltype(v[0])>>(v.begin() + lo, v.begin() + hi)); };
    const std::string body = json({{"epoch", c.epoch}, {"partition", role_->partition}, {"chunk", k},
                                   {"account", slice(c.account)}, {"equity", slice(c.equity)}, {"mm", slice(c.mm)},
                                   {"im", slice(c.im)}, {"status", slice(c.status)}})
                                 .dump();
    nats_->js_publish_async(base + ".c" + std::to_string(k), body, base + ".c" + std::to_string(k) + "." + checksum_hex(body));
  }
  nats_->js_wait(30000);
  json intents = json::array();
  for (const auto& d : c.intents) intents.push_back(chain::to_hex(d));
  const std::string done = json({{"epoch", c.epoch}, {"partition", role_->partition}, {"chunks", chunks}, {"accounts", n},
                                 {"intents", intents}, {"instance", cfg_.instance}, {"closed_ms", c.closed_ms}})
                               .dump();
  nats_->js_publish(base + ".done", done, base + ".done." + checksum_hex(done));
}

void Service::maybe_roll_epoch() {
  const std::int64_t now = now_ms();
  if (role_ ? wall_epoch(now) <= epoch_ : now - epoch_started_ms_ < cfg_.epoch_seconds * 1000) return;
  if (!engine_ || need_full_) {
    // Anchoring a state nobody valued would attest to nothing: the epoch stays open.
    if (!epoch_waiting_logged_) log("epoch %llu stays open until the book can be valued", static_cast<unsigned long long>(epoch_));
    epoch_waiting_logged_ = true;
    return;
  }
  epoch_waiting_logged_ = false;
  // Capture every account as it stands, durably, before the epoch counts as closed:
  // after a crash the capture is either complete or the epoch is still open.
  const Book& book = vault_.book();
  AccountTable t = engine_->accounts();
  EpochCapture c;
  c.epoch = epoch_;
  c.started_ms = epoch_started_ms_;
  c.closed_ms = now;
  c.account.assign(book.account_id.begin(), book.account_id.end());
  c.equity = std::move(t.equity);
  c.mm = std::move(t.mm);
  c.im = std::move(t.im);
  c.status = std::move(t.status);
  c.intents = epoch_intents_;  // a copy: if the write fails, the epoch stays open with its intents
  if (role_) {
    publish_epoch_part(c);
    epoch_ = wall_epoch(now);
    epoch_started_ms_ = static_cast<std::int64_t>(epoch_) * cfg_.epoch_seconds * 1000;
    epoch_intents_.clear();
    store_.append({{"t", "epoch"}, {"epoch", epoch_}, {"started_ms", epoch_started_ms_}});
    store_.sync();
    metrics_.epoch(static_cast<double>(epoch_));
    return;
  }
  const auto t0 = Clock::now();
  epochs_.write_capture(c);
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  // Durable on the engine thread (the WAL's epoch record below depends on it): said
  // when slow, since ticks wait for it.
  if (ms >= 50)
    log("epoch %llu closed: its capture of %zu accounts took %.0f ms to write durably (ticks waited for it)",
        static_cast<unsigned long long>(epoch_), c.account.size(), ms);
  ++epoch_;
  epoch_started_ms_ = now;
  epoch_intents_.clear();
  store_.append({{"t", "epoch"}, {"epoch", epoch_}, {"started_ms", epoch_started_ms_}});
  store_.sync();
  metrics_.epoch(static_cast<double>(epoch_));
  anchorer_->closed(std::move(c));
}

EndpointStats& Service::endpoint(const std::string& name) {
  for (auto& e : endpoints_)
    if (e->name == name) return *e;
  throw logic_error("no endpoint " + name);
}

void Service::serve_api(const ApiRequest& r) {
  auto reply = [&](const std::string& body, const Headers& h = {}) {
    try {
      nats_->publish(r.reply, body, h);
    } catch (const std::exception& e) {
      log("api reply: %s", e.what());
    }
  };
  auto fail = [&](int code, const std::string& msg) {
    EndpointStats& st = endpoint(r.endpoint);
    ++st.errors;
    {
      std::lock_guard<std::mutex> lock(st.last_error_mu);
      st.last_error = msg;
    }
    reply(dump(json({{"error", msg}})), {{"Nats-Service-Error", msg}, {"Nats-Service-Error-Code", std::to_string(code)}});
  };
  if (r.endpoint == "stress") {
    // A copy of the book and market taken here, on the engine thread; the job runs
    // on its own thread (service/stress_jobs.cpp) and replies when it ends.
    if (stress_jobs_->busy()) return fail(503, "a stress job is running; try again when it ends");
    if (!engine_) return fail(503, "not ready: no valuation yet");
    Market m;
    for (const auto& [u, um] : market_) m.underlyings[u] = um;
    StressSpec spec;
    try {
      spec = parse_stress_request(r.body, vault_.book(), m);
    } catch (const input_error& e) {
      return fail(400, e.what());
    } catch (const unavailable_error& e) {
      return fail(501, e.what());
    }
    const long long scenarios = static_cast<long long>(spec.scenario_count());
    const std::string job = stress_jobs_->start(vault_.book(), std::move(m), methodology_, std::move(spec), r.reply);
    log("stress job %s started: %lld scenarios, on its own thread at low priority", job.c_str(), scenarios);
    return;
  }
  if (r.endpoint == "health") {
    json ticks = json::object();
    for (const auto& [u, t] : last_tick_) ticks[u] = t.first;
    reply(json({{"status", engine_ ? "ok" : "waiting"},
                {"accounts", vault_.book().account_count()},
                {"positions", vault_.book().position_count()},
                {"epoch", epoch_},
                {"epochs", anchorer_->status()},
                {"vault_seq", vault_seq_},
                {"ticks", ticks},
                {"device", engine_ ? engine_->device_name() : std::string("none")},
                {"layout", layout_health()}})
              .dump());
    return;
  }
  std::uint64_t id = 0;
  try {
    const auto account = uint64_field(parse_request(r.body, "{\"account\": <id>}"), "account");
    if (!account) return fail(400, "missing field 'account'");
    id = *account;
  } catch (const input_error& e) {
    return fail(400, e.what());
  }
  const std::int32_t a = vault_.account_index(id);
  if (a < 0) return fail(404, "unknown account " + std::to_string(id));
  if (!engine_) return fail(503, "no market yet: the book is not valued");
  const AccountChange row = engine_->accounts({a}).at(0);
  const std::uint8_t status = row.status;
  const BlockResults b = engine_->account_blocks(a);
  const Book& book = vault_.book();
  const std::vector<std::size_t> positions = vault_.positions_of(a);
  json unds = json::array();
  for (std::size_t k = 0; k < b.account.size(); ++k) {
    const std::string& u = book.underlyings[b.underlying[k]];
    const UnderlyingMethodology& meth = methodology_.for_underlying(u);
    std::vector<double> pnl(meth.scenarios.size(), 0.0);
    for (const std::size_t p : positions) {
      if (book.underlying[book.pos_instrument[p]] != b.underlying[k]) continue;
      const std::vector<double> row = engine_->scenario_row(book.pos_instrument[p]);
      for (std::size_t j = 0; j < pnl.size(); ++j) pnl[j] += book.pos_quantity[p] * row[j];
    }
    for (std::size_t j = 0; j < pnl.size(); ++j) pnl[j] *= meth.scenarios[j].damp;
    unds.push_back({{"underlying", u}, {"mtm", b.mtm[k]}, {"delta", b.delta[k]}, {"gamma", b.gamma[k]},
                    {"vega", b.vega[k]}, {"theta", b.theta[k]}, {"rho", b.rho[k]}, {"scan", b.scan[k]},
                    {"worst", b.worst[k]}, {"mm", b.mm[k]}, {"im", b.im[k]}, {"scenario_pnl", pnl}});
  }
  reply(json({{"account", id}, {"equity", row.equity}, {"mm", row.mm}, {"im", row.im},
              {"mm_surplus", row.mm_surplus}, {"im_surplus", row.im_surplus}, {"status", io::status_name(status)},
              {"epoch", epoch_}, {"underlyings", unds}})
            .dump());
}

void Service::setup_micro() {
  for (auto [name, subject] : {std::pair{"account", "risk.api.account"}, std::pair{"health", "risk.api.health"},
                               std::pair{"proof", "risk.api.proof"}, std::pair{"stress", "risk.api.stress"}}) {
    auto st = std::make_unique<EndpointStats>();
    st->name = name;
    st->subject = subject;
    endpoints_.push_back(std::move(st));
  }
  for (std::size_t k = 0; k < endpoints_.size(); ++k) {
    EndpointStats* st = endpoints_[k].get();
    nats_->subscribe(
        st->subject,
        [this, st](const Message& m) {
          ++st->requests;
          if (!m.reply()) return;
          if (st->name == "proof") {  // answered by the epoch proof thread, off the engine thread
            anchorer_->request_proof(m.reply(), std::string(m.data()));
            return;
          }
          {
            std::lock_guard<std::mutex> lock(mu_);
            pending_api_.push_back(ApiRequest{st->name, m.reply(), std::string(m.data())});
          }
          cv_.notify_one();
        },
        "q");
  }
  auto endpoints_json = [this](bool stats) {
    json eps = json::array();
    for (const auto& st : endpoints_) {
      json e = {{"name", st->name}, {"subject", st->subject}, {"queue_group", "q"}};
      if (stats) {
        std::lock_guard<std::mutex> lock(st->last_error_mu);
        const std::uint64_t n = st->requests, ns = st->nanos;
        e.update({{"num_requests", n}, {"num_errors", st->errors.load()}, {"last_error", st->last_error},
                  {"processing_time", ns}, {"average_processing_time", n ? ns / n : 0}});
      } else {
        e["metadata"] = nullptr;
      }
      eps.push_back(e);
    }
    return eps;
  };
  nats_->serve_micro(service_id_, json::object(), [this, endpoints_json](const std::string& verb) {
    if (verb == "INFO")
      return json{{"description", "vaultrisk portfolio risk: account margin and health"}, {"endpoints", endpoints_json(false)}};
    if (verb == "STATS") return json{{"started", started_}, {"endpoints", endpoints_json(true)}};
    return json::object();
  });
}

int Service::run(std::atomic<bool>& stop) {
  // NATS first: recovery reads the last published intent for the nonce high-water mark.
  const std::string pk = role_ ? std::to_string(role_->partition) : std::string();
  nats_ = std::make_unique<NatsClient>(cfg_.nats_url, role_ ? "vaultrisk-" + cfg_.instance + "-p" + pk : "vaultrisk",
                                       cfg_.nats_security);
  nats_->set_replicas(cfg_.replicas);
  // VAULT has no age limit: recovery replays it from the snapshot's sequence, so
  // its retention is the vault indexer's decision, not ours. The streams we publish
  // to age out (--epochs-max-age-days, --intents-max-age-days). These apply when
  // the service creates a stream; an existing stream keeps its own configuration.
  constexpr std::int64_t kDay = 24 * 3600;
  if (!role_) {  // in a cluster, the instance has made every stream before any partition starts
    nats_->ensure_stream("VAULT", {"vault.event.>"});
    nats_->ensure_stream("INTENTS", {"sequencer.intent.liquidation"},
                         {false, static_cast<std::int64_t>(cfg_.intents_max_age_days) * kDay});
    nats_->ensure_stream(kEpochStream, {"vaultrisk.epoch.>"}, {false, static_cast<std::int64_t>(cfg_.epochs_max_age_days) * kDay});
  } else {
    // Queries routed here from the moment the lease is ours: they wait in the queue
    // while the partition is rebuilt, and are answered by the first engine pass.
    const std::string internal = "vaultrisk.internal.account.p" + std::to_string(role_->partition);
    auto st = std::make_unique<EndpointStats>();
    st->name = "account";
    st->subject = internal;
    endpoints_.push_back(std::move(st));
    nats_->subscribe(internal, [this](const Message& m) {
      if (!m.reply()) return;
      {
        std::lock_guard<std::mutex> lock(mu_);
        pending_api_.push_back(ApiRequest{"account", m.reply(), std::string(m.data())});
      }
      cv_.notify_one();
    });
  }
  recover();
  if (!cfg_.market_file.empty()) {
    const Market initial = io::load_market(cfg_.market_file);
    for (const auto& [u, m] : initial.underlyings)
      if (!market_.count(u)) {  // ticks restored from state are newer than the file
        market_[u] = m;
        Market one;
        one.time = initial.time;
        one.underlyings[u] = m;
        market_body_[u] = io::market_to_json(one);
      }
  }
  if (role_) return run_partition_loop(stop);
  AnchorSettings as;
  as.rpc_url = cfg_.rpc_url;
  as.contract = domain_.verifying_contract;
  as.poster = cfg_.poster_key_file.empty()
                  ? std::make_shared<const chain::Signer>(chain::read_key_file(cfg_.signing_key_file))
                  : std::make_shared<const chain::Signer>(chain::read_key_file(cfg_.poster_key_file));
  as.rpc_timeout_ms = cfg_.rpc_timeout_ms;
  as.chain_id = cfg_.chain_id;
  if (!as.rpc_url.empty() && as.contract == chain::Address{})
    throw input_error("--rpc needs --contract: the anchor contract's address (vaultrisk deploy-anchor prints it)");
  anchorer_ = std::make_unique<EpochAnchorer>(epochs_, *nats_, metrics_, as, [this](const std::string& m) { log("%s", m.c_str()); });
  // Resume exactly after the last event this state dir recorded, in stream order.
  nats_->pull_subscribe("VAULT", "vault.event.>", "vaultrisk", vault_seq_ + 1);
  log("vault events from stream sequence %llu", static_cast<unsigned long long>(vault_seq_ + 1));
  stress_jobs_ = std::make_unique<StressJobs>(*nats_);
  setup_micro();
  anchorer_->on_proof_error = [this](const std::string& msg) {
    EndpointStats& st = endpoint("proof");
    ++st.errors;
    std::lock_guard<std::mutex> lock(st.last_error_mu);
    st.last_error = msg;
  };
  anchorer_->on_proof_served = [this](std::uint64_t nanos) { endpoint("proof").nanos += nanos; };
  anchorer_->start(epoch_);
  start_valuing();
  std::thread vault_thread([&] { vault_loop(stop); });
  log("serving on %s as %s; signer %s; metrics %s", cfg_.nats_url.c_str(), service_id_.c_str(),
      chain::to_hex(signer_->address()).c_str(),
      metrics_.port() >= 0 ? ("http://" + cfg_.metrics_bind + ":" + std::to_string(metrics_.port()) + "/metrics").c_str() : "off");
  std::printf("ready\n");
  std::fflush(stdout);

  while (!stop) engine_pass();
  vault_thread.join();
  anchorer_->stop();
  maybe_snapshot(true);
  log("stopped cleanly");
  return 0;
}

// The first valuation of the book, then ticks.
void Service::start_valuing() {
  need_full_ = false;
  guarded("revaluation", [&] {
    rebuild_engine();
    evaluate(true, std::nullopt);
  });
  nats_->subscribe("oracle.tick.>", [this](const Message& m) { on_tick(m); });
  nats_->flush();
}

// The rest of run() for one partition of a cluster: no anchorer, no micro service of
// its own (the instance routes risk.api.account here), and it stops at once when the
// lease may have passed to another instance.
int Service::run_partition_loop(std::atomic<bool>& stop) {
  const std::string pk = std::to_string(role_->partition);
  const auto ms_since = [](Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); };
  const double setup_ms = ms_since(started_at_);
  auto t = Clock::now();
  bool early = false;
  if (consumer_early_.valid()) try {
      consumer_early_.get();
      early = consumer_early_seq_ == vault_seq_ + 1;  // else the state moved on: a new consumer
    } catch (const std::exception& e) {
      log("the consumer created beside the state read failed (created again): %s", e.what());
    }
  if (early)
    nats_->bind_pull_consumer("VAULT", "vaultrisk-p" + pk);
  else
    nats_->pull_subscribe("VAULT", "vault.event.>", "vaultrisk-p" + pk, vault_seq_ + 1);
  const double consumer_ms = ms_since(t);  // what the consumer added beyond the state read
  log("vault events from stream sequence %llu", static_cast<unsigned long long>(vault_seq_ + 1));
  snap_thread_ = std::thread([this] { nats_snapshot_loop(); });
  // Catch up with VAULT, to the stream's end as of now, before the first evaluation
  // and the first answer: the state from NATS is as of its snapshot, and alerting
  // from it would report statuses the events since have already changed.
  t = Clock::now();
  const std::uint64_t target = nats_->js_last_seq("VAULT");
  std::size_t caught_up = 0;
  for (const auto t0 = Clock::now(); vault_seq_ < target && !stop;) {
    auto msgs = nats_->fetch(1024, 500);
    if (msgs.empty()) {
      if (Clock::now() - t0 > std::chrono::seconds(60))
        throw nats_error("partition " + pk + ": VAULT not caught up to sequence " + std::to_string(target) + " in 60 s");
      continue;
    }
    caught_up += msgs.size();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& m : msgs) pending_events_.push_back(m);
    }
    process_vault_batch();
  }
  const double catch_up_ms = ms_since(t);
  t = Clock::now();
  start_valuing();
  // Where a takeover's time goes, for whoever tunes --lease-ms and --snapshot-ms.
  log("partition %u ready in %.0f ms: state from NATS %.0f ms, consumer %.0f ms, catch-up %.0f ms (%zu events), "
      "first valuation %.0f ms", role_->partition, ms_since(started_at_), setup_ms, consumer_ms, catch_up_ms, caught_up,
      ms_since(t));
  std::atomic<bool> vault_stop{false};
  std::thread vault_thread([&] { vault_loop(vault_stop); });
  log("owner of partition %u of %u: %zu accounts", role_->partition, role_->partitions, vault_.book().account_count());
  bool lost = false;
  while (!stop) {
    if (!role_->owned()) {
      lost = true;
      log("the lease of partition %u may have passed to another instance: stopping at once", role_->partition);
      break;
    }
    engine_pass();
  }
  vault_stop = true;
  vault_thread.join();
  if (!lost) guarded("snapshot", [&] { maybe_snapshot(true); });
  log("partition %u released", role_->partition);
  return 0;
}

void Service::engine_pass() {
  std::deque<ApiRequest> api;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(50), [&] {
      return !pending_ticks_.empty() || !pending_events_.empty() || !pending_api_.empty();
    });
    api.swap(pending_api_);
  }
  guarded("vault events", [&] { process_vault_batch(); });
  guarded("ticks", [&] { process_ticks(); });
  guarded("merge", [&] {  // a background layout of the book swapped in, or started
    if (!engine_ || need_full_) return;
    if (const auto what = engine_->poll(vault_.book())) log("%s", what->c_str());
  });
  guarded("revaluation", [&] {
    if (need_full_) {
      need_full_ = false;  // a rebuild that throws is not retried on every pass
      rebuild_engine();
      evaluate(true, std::nullopt);
    } else if (need_scan_ || Clock::now() - last_sweep_ >= std::chrono::seconds(1)) {
      last_sweep_ = Clock::now();
      evaluate(false, std::nullopt);  // intent deadlines pass with time alone
    }
  });
  for (const ApiRequest& r : api) {
    const auto t0 = Clock::now();
    guarded("api", [&] { serve_api(r); });
    endpoint(r.endpoint).nanos +=
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
  }
  guarded("epoch close", [&] { maybe_roll_epoch(); });
  guarded("snapshot", [&] { maybe_snapshot(false); });
}

}  // namespace

int run_service(const ServeConfig& config, std::atomic<bool>& stop) {
  Service s(config, nullptr);
  return s.run(stop);
}

int run_partition(const ServeConfig& config, const PartitionRole& role, std::atomic<bool>& stop) {
  Service s(config, &role);
  return s.run(stop);
}

}  // namespace vaultrisk::service
