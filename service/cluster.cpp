// The cluster instance: leases, partition workers, query routing, nonces and the
// cluster's epochs (see cluster.hpp).
#include "service/cluster.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "chain/secp256k1.hpp"
#include "core/error.hpp"
#include "service/api_request.hpp"
#include "service/epoch_anchorer.hpp"
#include "service/epochs.hpp"
#include "service/metrics.hpp"
#include "service/nats_client.hpp"
#include "service/partition_snapshot.hpp"
#include "service/partitions.hpp"

namespace vaultrisk::service {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

// A signer's intents (NonceSource): nonces reserved 1024 at a time in VAULTRISK_CLUSTER (compare-and-set on
// the key's revision) before any is used: after kill -9 the rest of a block is
// skipped, never reused, and an instance restarted elsewhere carries on above it.
class KvNonces final : public NonceSource {
 public:
  KvNonces(NatsClient& nats, std::string key) : nats_(nats), key_(std::move(key)) {}
  void publish_intent(const std::function<std::pair<std::string, std::string>(std::uint64_t)>& sign) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (next_ >= ceiling_) reserve();
    const auto [body, id] = sign(next_);
    nats_.js_publish_async("sequencer.intent.liquidation", body, id);
    ++next_;  // spent even if the publish fails: a nonce is never used twice
  }
  void wait(int timeout_ms) override { nats_.js_wait(timeout_ms); }

 private:
  void reserve() {
    for (int attempt = 0; attempt < 50; ++attempt) {
      const auto e = nats_.kv_get(kClusterBucket, key_);
      std::uint64_t reserved = 0;
      if (e) try {
          reserved = std::stoull(e->value);
        } catch (const std::exception&) {
          throw input_error(std::string(kClusterBucket) + " " + key_ + ": not a nonce: '" + e->value + "'");
        }
      const std::uint64_t base = std::max(next_, reserved), ceiling = base + 1024;
      const auto r = e ? nats_.kv_update(kClusterBucket, key_, std::to_string(ceiling), e->revision)
                       : nats_.kv_create(kClusterBucket, key_, std::to_string(ceiling));
      if (r) {
        next_ = base;
        ceiling_ = ceiling;
        return;
      }
    }
    throw nats_error(std::string(kClusterBucket) + " " + key_ + ": nonce reservation keeps conflicting");
  }
  NatsClient& nats_;
  std::string key_;
  std::mutex mu_;
  std::uint64_t next_ = 0, ceiling_ = 0;
};

struct Worker {
  std::uint32_t partition = 0;
  bool hand_back = false;      // retiring: delete our lease once it has finished
  std::uint64_t revision = 0;  // of our lease
  std::atomic<std::int64_t> renewed_ms{0};
  std::atomic<bool> stop{false}, finished{false};
  PartitionRole role;
  std::thread thread;
};

// The anchorer's side of the cluster's epochs: join the partitions' shares.
struct Leader {
  std::unique_ptr<NatsClient> nats;
  std::unique_ptr<EpochStore> store;
  std::unique_ptr<EpochAnchorer> anchorer;
  std::uint64_t revision = 0;
  std::atomic<bool> stop{false};
  std::thread collector;
};

class Instance {
 public:
  explicit Instance(const ServeConfig& c);
  ~Instance() {
    if (nats_) nats_->stop_handlers();  // callbacks use members declared after nats_
  }
  int run(std::atomic<bool>& stop);

 private:
  void log(const char* fmt, ...) const;
  std::string lease_key(std::uint32_t k) const { return "partition." + std::to_string(k); }
  void start_worker(std::uint32_t k, std::uint64_t revision);
  // Tells a worker to stop; it retires without blocking the lease thread. With
  // hand_back, its lease is kept fresh until it has stored its final state, then deleted.
  void stop_worker(std::uint32_t k, bool hand_back);
  void renew(Worker& w);
  void reap();
  void balance();
  void lead();
  void stop_leading();
  void collect(Leader& l);
  void setup_api();
  json health();

  ServeConfig cfg_;
  Metrics metrics_;
  std::unique_ptr<NatsClient> nats_;
  std::unique_ptr<KvNonces> nonces_;
  chain::Address signer_{};
  std::map<std::uint32_t, std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<Worker>> retiring_;  // stopping; lease thread only
  std::map<std::uint32_t, std::int64_t> cooldown_;  // partition -> steady ms before which we do not retake it
  std::unique_ptr<Leader> leader_;
  std::int64_t last_release_ms_ = 0;
  std::uint64_t round_ = 0;
  std::vector<std::string> beat_keys_;  // the heartbeat keys listed last
  std::atomic<std::uint64_t> api_requests_{0};
  std::mutex mu_;  // workers_, leader_ and the view below, for the NATS callbacks
  std::string id_;
  // The cluster as the last heartbeat round saw it (no NATS I/O in callbacks):
  // partition -> owner, from each live instance's heartbeat (the newest wins).
  std::map<std::uint32_t, std::string> owners_;
  std::vector<std::string> live_;
};

Instance::Instance(const ServeConfig& c) : cfg_(c), metrics_(c.metrics_port, c.metrics_bind) {
  if (cfg_.partitions == 0 || cfg_.partitions > 1024) throw input_error("--partitions: must be 1..1024");
  if (cfg_.instance.empty() || !std::all_of(cfg_.instance.begin(), cfg_.instance.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
      }))
    throw input_error("--instance: a name of [A-Za-z0-9_-] is required in a cluster (unique per instance)");
  if (cfg_.lease_ms < 500) throw input_error("--lease-ms: must be at least 500");
  if (cfg_.signing_key_file.empty()) throw input_error("--signing-key: a key file is required to sign intents");
  signer_ = chain::Signer(chain::read_key_file(cfg_.signing_key_file)).address();
  id_ = cfg_.instance;
}

void Instance::log(const char* fmt, ...) const {
  if (cfg_.quiet) return;
  std::va_list args;
  va_start(args, fmt);
  std::fprintf(stderr, "[vaultrisk serve %s] ", cfg_.instance.c_str());
  std::vfprintf(stderr, fmt, args);
  std::fputc('\n', stderr);
  va_end(args);
}

void Instance::start_worker(std::uint32_t k, std::uint64_t revision) {
  auto w = std::make_unique<Worker>();
  Worker* wp = w.get();
  w->partition = k;
  w->revision = revision;
  w->renewed_ms = steady_ms();
  w->role.partition = k;
  w->role.partitions = cfg_.partitions;
  w->role.metrics = &metrics_;
  w->role.nonces = nonces_.get();
  // Stop acting well before the lease can expire and pass on: at 3/4 of it.
  const std::int64_t margin = cfg_.lease_ms * 3 / 4;
  w->role.owned = [wp, margin] { return steady_ms() - wp->renewed_ms.load() < margin; };
  w->role.ready = [this, k](double seconds, std::uint64_t alerts) {
    metrics_.takeover(seconds, static_cast<double>(alerts));
    log("partition %u valued %.2f s after its lease was taken; first evaluation sent %llu alerts", k, seconds,
        static_cast<unsigned long long>(alerts));
  };
  ServeConfig c = cfg_;
  std::string sub = "p";
  sub += std::to_string(k);
  c.state_dir = (std::filesystem::path(cfg_.state_dir) / sub).string();
  c.metrics_port = -1;
  w->thread = std::thread([this, wp, c] {
    try {
      // Built from NATS alone (SPEC §9): whatever this disk held for it may be stale.
      std::filesystem::remove_all(c.state_dir);
      run_partition(c, wp->role, wp->stop);
    } catch (const std::exception& e) {
      metrics_.failure("partition");
      log("partition %u stopped on an error (its lease is handed back): %s", wp->partition, e.what());
    }
    wp->finished = true;
  });
  std::lock_guard<std::mutex> lock(mu_);
  workers_[k] = std::move(w);
}

void Instance::stop_worker(std::uint32_t k, bool hand_back) {
  std::unique_ptr<Worker> w;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = workers_.find(k);
    if (it == workers_.end()) return;
    w = std::move(it->second);
    workers_.erase(it);
  }
  w->stop = true;
  w->hand_back = hand_back;
  retiring_.push_back(std::move(w));
}

// One renewal of a worker's lease (compare-and-set on its revision).
void Instance::renew(Worker& w) {
  std::optional<std::uint64_t> rev;
  try {
    rev = nats_->kv_update(kLeaseBucket, lease_key(w.partition), cfg_.instance, w.revision);
  } catch (const std::exception& e) {
    log("renewing partition %u: %s", w.partition, e.what());
    return;  // the worker stops by itself once the lease is too old
  }
  if (rev) {
    w.revision = *rev;
    w.renewed_ms = steady_ms();
    return;
  }
  metrics_.lease_lost();
  log("lost the lease of partition %u (renewed too late; another instance may own it)", w.partition);
  w.renewed_ms = 0;  // stop acting at once
  w.hand_back = false;
  if (!w.stop) stop_worker(w.partition, false);
}

// Joins the retired workers that have finished, and hands their leases back.
void Instance::reap() {
  for (auto it = retiring_.begin(); it != retiring_.end();) {
    Worker& w = **it;
    if (!w.finished) {
      ++it;
      continue;
    }
    if (w.thread.joinable()) w.thread.join();
    if (w.hand_back) try {
        // Only our own lease: a compare-and-set to an empty value, then delete.
        if (nats_->kv_update(kLeaseBucket, lease_key(w.partition), "", w.revision))
          nats_->kv_delete(kLeaseBucket, lease_key(w.partition));
      } catch (const std::exception& e) {
        log("handing back partition %u: %s (it expires on its own)", w.partition, e.what());
      }
    it = retiring_.erase(it);
  }
}

void Instance::balance() {
  const std::int64_t now = steady_ms();
  // Renewals first, and nothing in this thread ever waits for a worker: a late
  // renewal stops a partition. Workers that ended on their own retire.
  std::vector<Worker*> active;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [k, w] : workers_) active.push_back(w.get());
  }
  for (Worker* w : active) {
    if (w->finished) {
      const std::uint32_t k = w->partition;
      stop_worker(k, true);
      cooldown_[k] = now + 5000;  // let another instance try it first
      continue;
    }
    renew(*w);
  }
  for (auto& w : retiring_)
    if (w->hand_back && !w->finished) renew(*w);  // still storing its final state
  reap();
  std::vector<std::uint32_t> owned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [k, w] : workers_) owned.push_back(k);
  }
  // Heartbeat: the live instances are the keys instance.* that have not expired; each
  // says what it owns, which is how the others route queries and report health.
  nats_->kv_put(kLeaseBucket, "instance." + cfg_.instance,
                json({{"time_ms", wall_ms()}, {"signer", chain::to_hex(signer_)}, {"owned", owned}}).dump());
  // The others' heartbeats are read every round, so that a dead instance's share is
  // taken as soon as its heartbeat expires. Listing the keys (which finds new
  // instances) costs the server a watcher and is done every other round; in between,
  // the instances listed last are read by key.
  {
    if (round_++ % 2 == 0 || beat_keys_.empty()) {
      beat_keys_.clear();
      for (auto& key : nats_->kv_keys(kLeaseBucket))
        if (key.rfind("instance.", 0) == 0) beat_keys_.push_back(std::move(key));
    }
    std::vector<std::pair<std::int64_t, std::pair<std::string, std::vector<std::uint32_t>>>> beats;
    for (const auto& key : beat_keys_) {
      const auto e = nats_->kv_get(kLeaseBucket, key);
      if (!e || e->value.empty()) continue;
      try {
        const json j = json::parse(e->value);
        beats.push_back({j.value("time_ms", 0ll), {key.substr(9), j.value("owned", std::vector<std::uint32_t>{})}});
      } catch (const std::exception&) {
      }
    }
    std::sort(beats.begin(), beats.end());
    std::map<std::uint32_t, std::string> owners;
    std::vector<std::string> live;
    for (const auto& [t, b] : beats) {
      live.push_back(b.first);
      for (std::uint32_t k : b.second) owners[k] = b.first;
    }
    std::lock_guard<std::mutex> lock(mu_);
    owners_ = std::move(owners);
    live_ = std::move(live);
  }
  std::size_t live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    live = std::max<std::size_t>(live_.size(), 1);
  }
  const std::size_t fair = (cfg_.partitions + live - 1) / live;
  std::size_t mine;
  {
    std::lock_guard<std::mutex> lock(mu_);
    mine = workers_.size();
  }
  if (mine < fair) {
    // Start the search at a place of our own, so instances starting together spread.
    const std::uint32_t start = partition_of_token(cfg_.instance, cfg_.partitions);
    for (std::uint32_t i = 0; i < cfg_.partitions && mine < fair; ++i) {
      const std::uint32_t k = (start + i) % cfg_.partitions;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (workers_.count(k)) continue;
      }
      if (std::any_of(retiring_.begin(), retiring_.end(), [k](const auto& w) { return w->partition == k; })) continue;
      if (auto it = cooldown_.find(k); it != cooldown_.end() && now < it->second) continue;
      if (const auto rev = nats_->kv_create(kLeaseBucket, lease_key(k), cfg_.instance)) {
        metrics_.partitions_owned(static_cast<double>(mine + 1));
        log("took partition %u (lease revision %llu)", k, static_cast<unsigned long long>(*rev));
        start_worker(k, *rev);
        ++mine;
      }
    }
  } else if (mine > fair && now - last_release_ms_ > cfg_.lease_ms / 2) {
    // More than a fair share (an instance joined): hand one over, with its state.
    std::uint32_t k;
    {
      std::lock_guard<std::mutex> lock(mu_);
      k = workers_.rbegin()->first;
    }
    log("handing partition %u over: %zu owned, %zu live instances", k, mine, live);
    stop_worker(k, true);
    cooldown_[k] = now + 4 * cfg_.lease_ms;
    last_release_ms_ = now;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    metrics_.partitions_owned(static_cast<double>(workers_.size()));
  }
}

void Instance::lead() {
  if (leader_) {
    std::optional<std::uint64_t> rev;
    try {
      rev = nats_->kv_update(kLeaseBucket, "anchorer", cfg_.instance, leader_->revision);
    } catch (const std::exception& e) {
      log("renewing the anchorer lease: %s", e.what());
      return;
    }
    if (rev) {
      leader_->revision = *rev;
      return;
    }
    log("lost the anchorer lease");
    stop_leading();
    return;
  }
  const auto rev = nats_->kv_create(kLeaseBucket, "anchorer", cfg_.instance);
  if (!rev) return;
  auto l = std::make_unique<Leader>();
  l->revision = *rev;
  l->nats = std::make_unique<NatsClient>(cfg_.nats_url, "vaultrisk-" + cfg_.instance + "-anchorer", cfg_.nats_security);
  l->nats->set_replicas(cfg_.replicas);
  // Its epochs come from EPOCH_PARTS; what an earlier term left here may be stale.
  const auto dir = std::filesystem::path(cfg_.state_dir) / "anchorer";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  l->store = std::make_unique<EpochStore>(dir);
  AnchorSettings as;
  as.rpc_url = cfg_.rpc_url;
  as.contract = chain::address_from_hex(cfg_.verifying_contract);
  as.poster = std::make_shared<const chain::Signer>(
      chain::read_key_file(cfg_.poster_key_file.empty() ? cfg_.signing_key_file : cfg_.poster_key_file));
  as.rpc_timeout_ms = cfg_.rpc_timeout_ms;
  as.chain_id = cfg_.chain_id;
  as.skip_passed = true;
  l->anchorer = std::make_unique<EpochAnchorer>(*l->store, *l->nats, metrics_, as, [this](const std::string& m) { log("%s", m.c_str()); });
  Leader* lp = l.get();
  l->nats->subscribe(
      "risk.api.proof",
      [this, lp](const Message& m) {
        ++api_requests_;
        if (m.reply()) lp->anchorer->request_proof(m.reply(), std::string(m.data()));
      },
      "q");
  l->anchorer->start(0);
  l->collector = std::thread([this, lp] { collect(*lp); });
  log("anchorer of the cluster's epochs (lease revision %llu)", static_cast<unsigned long long>(*rev));
  std::lock_guard<std::mutex> lock(mu_);
  leader_ = std::move(l);
}

void Instance::stop_leading() {
  std::unique_ptr<Leader> l;
  {
    std::lock_guard<std::mutex> lock(mu_);
    l = std::move(leader_);
  }
  if (!l) return;
  l->nats->stop_handlers();  // no proof request reaches the anchorer being taken down
  l->stop = true;
  if (l->collector.joinable()) l->collector.join();
  l->anchorer->stop();
}

// Joins the partitions' shares of each epoch, in order. An epoch some partition never
// published (no owner when it closed: the takeover window) is skipped after a grace
// period; epochs on the contract need only increase (SPEC §7).
void Instance::collect(Leader& l) {
  const std::int64_t len = cfg_.epoch_seconds * 1000;
  const std::int64_t grace = std::max<std::int64_t>(10000, 4 * cfg_.lease_ms);
  std::uint64_t next = static_cast<std::uint64_t>(wall_ms() / len);
  try {
    if (const auto e = l.nats->kv_get(kClusterBucket, "epochs.next")) next = std::stoull(e->value);
  } catch (const std::exception& e) {
    log("epochs.next unreadable (%s): starting at the open epoch", e.what());
  }
  while (!l.stop) {
    try {
      const std::int64_t now = wall_ms();
      if (static_cast<std::int64_t>(next) >= now / len) {  // still open
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      const std::string base = "vaultrisk.part." + std::to_string(next) + ".p";
      std::vector<json> done(cfg_.partitions);
      std::vector<std::uint32_t> missing;
      for (std::uint32_t k = 0; k < cfg_.partitions; ++k) {
        const auto d = l.nats->js_get_last(kEpochPartsStream, base + std::to_string(k) + ".done");
        if (d) done[k] = json::parse(*d);
        else missing.push_back(k);
      }
      if (!missing.empty()) {
        if (now < (static_cast<std::int64_t>(next) + 1) * len + grace) {
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
          continue;
        }
        std::string list;
        for (std::uint32_t k : missing) {
          if (!list.empty()) list += ',';
          list += std::to_string(k);
        }
        log("epoch %llu skipped: partition(s) %s published no state for it (no owner when it closed)",
            static_cast<unsigned long long>(next), list.c_str());
        metrics_.epoch_skipped();
      } else {
        EpochCapture c;
        c.epoch = next;
        c.started_ms = static_cast<std::int64_t>(next) * len;
        for (std::uint32_t k = 0; k < cfg_.partitions; ++k) {
          const std::size_t chunks = done[k].at("chunks");
          for (std::size_t i = 0; i < chunks; ++i) {
            const std::string subject = base + std::to_string(k) + ".c" + std::to_string(i);
            const auto body = l.nats->js_get_last(kEpochPartsStream, subject);
            if (!body) throw input_error(std::string(kEpochPartsStream) + " " + subject + ": missing");
            const json j = json::parse(*body);
            const auto acc = j.at("account").get<std::vector<std::uint64_t>>();
            const auto eq = j.at("equity").get<std::vector<double>>(), mm = j.at("mm").get<std::vector<double>>(),
                       im = j.at("im").get<std::vector<double>>();
            const auto st = j.at("status").get<std::vector<std::uint8_t>>();
            if (eq.size() != acc.size() || mm.size() != acc.size() || im.size() != acc.size() || st.size() != acc.size())
              throw input_error(std::string(kEpochPartsStream) + " " + subject + ": columns of different lengths");
            c.account.insert(c.account.end(), acc.begin(), acc.end());
            c.equity.insert(c.equity.end(), eq.begin(), eq.end());
            c.mm.insert(c.mm.end(), mm.begin(), mm.end());
            c.im.insert(c.im.end(), im.begin(), im.end());
            c.status.insert(c.status.end(), st.begin(), st.end());
          }
          for (const auto& d : done[k].at("intents")) c.intents.push_back(chain::hash_from_hex(d.get<std::string>()));
          c.closed_ms = std::max<std::int64_t>(c.closed_ms, done[k].value("closed_ms", 0ll));
        }
        l.store->write_capture(c);
        log("epoch %llu joined: %zu accounts from %u partitions, %zu intents", static_cast<unsigned long long>(next),
            c.account.size(), cfg_.partitions, c.intents.size());
        metrics_.epoch(static_cast<double>(next));
        l.anchorer->closed(std::move(c));
      }
      ++next;
      l.nats->kv_put(kClusterBucket, "epochs.next", std::to_string(next));
    } catch (const std::exception& e) {
      metrics_.failure("epoch_join");
      log("joining epoch %llu: %s (retrying)", static_cast<unsigned long long>(next), e.what());
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
}

json Instance::health() {
  json owned = json::array(), owners = json::object();
  bool anchorer = false;
  std::vector<std::string> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [k, w] : workers_) owned.push_back(k);
    anchorer = leader_ != nullptr;
    for (std::uint32_t k = 0; k < cfg_.partitions; ++k) {
      const auto it = owners_.find(k);
      owners[std::to_string(k)] = it == owners_.end() ? json(nullptr) : json(it->second);
    }
    live = live_;
  }
  return {{"status", "ok"}, {"instance", cfg_.instance}, {"partitions", cfg_.partitions}, {"owned", owned},
          {"owners", owners}, {"instances", live}, {"anchorer", anchorer}, {"signer", chain::to_hex(signer_)}};
}

void Instance::setup_api() {
  auto error_reply = [this](const Message& m, int code, const std::string& msg) {
    nats_->respond(m, json({{"error", msg}}).dump(),
                   {{"Nats-Service-Error", msg}, {"Nats-Service-Error-Code", std::to_string(code)}});
  };
  // An account's query goes to its partition's owner, which answers the requester directly.
  nats_->subscribe(
      "risk.api.account",
      [this, error_reply](const Message& m) {
        ++api_requests_;
        if (!m.reply()) return;
        std::uint64_t id = 0;
        try {
          const auto account = uint64_field(parse_request(m.data(), "{\"account\": <id>}"), "account");
          if (!account) return error_reply(m, 400, "missing field 'account'");
          id = *account;
        } catch (const input_error& e) {
          return error_reply(m, 400, e.what());
        }
        const std::uint32_t k = partition_of(id, cfg_.partitions);
        bool owned;
        {
          std::lock_guard<std::mutex> lock(mu_);
          owned = owners_.count(k) > 0;
        }
        if (!owned)
          return error_reply(m, 503, "partition " + std::to_string(k) + " has no owner right now (a takeover is under way): retry");
        nats_->publish_request("vaultrisk.internal.account.p" + std::to_string(k), m.reply(), m.data());
      },
      "q");
  // Stress needs the whole book; in a cluster it runs as `vaultrisk stress --workers`.
  nats_->subscribe(
      "risk.api.stress",
      [this, error_reply](const Message& m) {
        ++api_requests_;
        if (m.reply())
          error_reply(m, 501, "risk.api.stress is not served by a cluster instance: run `vaultrisk stress --workers "
                              "NATS_URL` with `vaultrisk stress-worker`s on the cluster instead");
      },
      "q");
  nats_->subscribe(
      "risk.api.health",
      [this](const Message& m) {
        ++api_requests_;
        if (m.reply()) nats_->respond(m, health().dump());
      },
      "q");
  nats_->serve_micro(id_, {{"instance", cfg_.instance}}, [this](const std::string& verb) {
    json eps = json::array();
    for (const char* e : {"account", "health", "proof"})
      eps.push_back({{"name", e}, {"subject", std::string("risk.api.") + e}, {"queue_group", "q"}});
    if (verb == "INFO")
      return json{{"description", "vaultrisk portfolio risk (cluster instance " + cfg_.instance + ")"}, {"endpoints", eps}};
    if (verb == "STATS") return json{{"endpoints", eps}, {"num_requests", api_requests_.load()}};
    return json::object();
  });
}

int Instance::run(std::atomic<bool>& stop) {
  nats_ = std::make_unique<NatsClient>(cfg_.nats_url, "vaultrisk-" + cfg_.instance, cfg_.nats_security);
  nats_->set_replicas(cfg_.replicas);
  constexpr std::int64_t kDay = 24 * 3600;
  nats_->ensure_stream("VAULT", {"vault.event.>"});
  nats_->ensure_stream("INTENTS", {"sequencer.intent.liquidation"}, {false, static_cast<std::int64_t>(cfg_.intents_max_age_days) * kDay});
  nats_->ensure_stream(kEpochStream, {"vaultrisk.epoch.>"}, {false, static_cast<std::int64_t>(cfg_.epochs_max_age_days) * kDay});
  nats_->ensure_stream(kSnapshotStream, {"vaultrisk.snap.>"}, {false, 0, 1, true});
  nats_->ensure_stream(kEpochPartsStream, {"vaultrisk.part.>"}, {false, kDay});
  nats_->kv_ensure(kLeaseBucket, cfg_.lease_ms);
  nats_->kv_ensure(kClusterBucket, 0);
  nonces_ = std::make_unique<KvNonces>(*nats_, "nonce." + chain::to_hex(signer_));
  setup_api();
  nats_->flush();
  log("cluster instance: %u partitions, lease %d ms, signer %s, metrics %s", cfg_.partitions, cfg_.lease_ms,
      chain::to_hex(signer_).c_str(),
      metrics_.port() >= 0 ? ("http://" + cfg_.metrics_bind + ":" + std::to_string(metrics_.port()) + "/metrics").c_str() : "off");
  std::printf("ready\n");
  std::fflush(stdout);
  // Eight rounds per lease: renewals, and a dead instance's partitions taken within
  // an eighth of a lease of their expiry.
  const auto period = std::chrono::milliseconds(std::max(100, cfg_.lease_ms / 8));
  while (!stop) {
    const auto t0 = Clock::now();
    try {
      balance();
      lead();
    } catch (const std::exception& e) {
      metrics_.failure("lease");
      log("leases: %s (retrying)", e.what());
    }
    while (!stop && Clock::now() - t0 < period) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // A clean stop hands everything over at once, with each partition's final state.
  std::vector<std::uint32_t> owned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [k, w] : workers_) owned.push_back(k);
  }
  for (std::uint32_t k : owned) stop_worker(k, true);
  // Keep their leases fresh while they store their final states, then hand them back.
  for (auto t0 = Clock::now(); !retiring_.empty() && Clock::now() - t0 < std::chrono::seconds(60);) {
    for (auto& w : retiring_)
      if (w->hand_back && !w->finished) renew(*w);
    reap();
    std::this_thread::sleep_for(std::chrono::milliseconds(std::max(50, cfg_.lease_ms / 8)));
  }
  for (auto& w : retiring_) {  // still not done after a minute: wait for it, the lease expires
    w->hand_back = false;
    if (w->thread.joinable()) w->thread.join();
  }
  retiring_.clear();
  if (leader_) {
    const std::uint64_t rev = leader_->revision;
    stop_leading();
    try {
      if (nats_->kv_update(kLeaseBucket, "anchorer", "", rev)) nats_->kv_delete(kLeaseBucket, "anchorer");
    } catch (const std::exception&) {
    }
  }
  try {
    nats_->kv_delete(kLeaseBucket, "instance." + cfg_.instance);
  } catch (const std::exception&) {
  }
  log("stopped cleanly");
  return 0;
}

}  // namespace

int run_cluster(const ServeConfig& config, std::atomic<bool>& stop) {
  Instance i(config);
  return i.run(stop);
}

}  // namespace vaultrisk::service
