// Epoch trees, data availability and anchoring, in order.
#include "service/epoch_anchorer.hpp"

#include <algorithm>
#include <chrono>

#include "chain/anchor_client.hpp"
#include "chain/json_rpc.hpp"
#include "core/checksum.hpp"
#include "core/error.hpp"
#include "service/api_request.hpp"
#include "service/background_priority.hpp"
#include "service/metrics.hpp"
#include "service/nats_client.hpp"

namespace vaultrisk::service {

namespace {
using json = nlohmann::json;
}

EpochAnchorer::EpochAnchorer(EpochStore& store, NatsClient& nats, Metrics& metrics, AnchorSettings settings, Log log)
    : store_(store), nats_(nats), metrics_(metrics), settings_(std::move(settings)), log_(std::move(log)) {}

EpochAnchorer::~EpochAnchorer() { stop(); }

void EpochAnchorer::start(std::uint64_t open_epoch) {
  std::size_t queued = 0;
  for (std::uint64_t e : store_.captured()) {
    if (e >= open_epoch) continue;  // captured, but the crash came before the epoch closed
    last_closed_ = std::max(last_closed_, e);
    const auto s = store_.summary(e);
    const bool anchored = s && s->contains("anchor") && !(*s)["anchor"].is_null();
    if (anchored) last_anchored_ = std::max(last_anchored_, e);
    if (!s || !s->value("published", false) || (!anchored && !settings_.rpc_url.empty())) {
      queue_.push_back(e);
      ++queued;
    }
  }
  if (queued) log_(std::to_string(queued) + " closed epoch(s) from before the restart still to publish or anchor, from epoch " +
                   std::to_string(queue_.front()));
  if (settings_.rpc_url.empty()) log_("no --rpc: epochs are published to JetStream EPOCHS but not anchored on a chain");
  metrics_.epochs_pending(static_cast<double>(queue_.size()));
  metrics_.last_anchored_epoch(static_cast<double>(last_anchored_));
  thread_ = std::thread([this] {
    // Trees over every account and their publication: seconds of CPU at 1M accounts,
    // which must not take a core from the engine thread (issue #10).
    lower_this_thread_priority();
    loop();
  });
  proof_thread_ = std::thread([this] { proof_loop(); });
}

void EpochAnchorer::closed(EpochCapture capture) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::uint64_t e = capture.epoch;
    last_closed_ = std::max(last_closed_, e);
    queue_.push_back(e);
    fresh_.emplace(e, std::move(capture));
    metrics_.epochs_pending(static_cast<double>(queue_.size()));
  }
  cv_.notify_one();
}

void EpochAnchorer::request_proof(std::string reply, std::string body) {
  {
    std::lock_guard<std::mutex> lock(proof_mu_);
    proofs_.emplace_back(std::move(reply), std::move(body));
  }
  proof_cv_.notify_one();
}

void EpochAnchorer::stop() {
  {
    // Under each lock, so that neither thread misses the wake-up between its check and its wait.
    std::lock_guard<std::mutex> a(mu_);
    std::lock_guard<std::mutex> b(proof_mu_);
    stop_ = true;
  }
  cv_.notify_one();
  proof_cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (proof_thread_.joinable()) proof_thread_.join();
}

void EpochAnchorer::proof_loop() {
  while (true) {
    std::deque<std::pair<std::string, std::string>> batch;
    {
      std::unique_lock<std::mutex> lock(proof_mu_);
      proof_cv_.wait(lock, [&] { return stop_ || !proofs_.empty(); });
      if (stop_) return;
      batch.swap(proofs_);
    }
    for (const auto& [reply, body] : batch) {
      const auto t0 = std::chrono::steady_clock::now();
      serve_proof(reply, body);
      if (on_proof_served)
        on_proof_served(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count()));
    }
  }
}

json EpochAnchorer::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {{"last_closed_epoch", last_closed_},
          {"last_anchored_epoch", last_anchored_},
          {"epochs_pending", queue_.size()},
          {"chain", settings_.rpc_url.empty() ? "off" : settings_.rpc_url},
          {"last_error", last_error_}};
}

std::shared_ptr<const EpochTrees> EpochAnchorer::proof_trees(std::uint64_t epoch) {
  if (auto it = cache_.find(epoch); it != cache_.end()) return it->second;
  auto t = std::make_shared<const EpochTrees>(store_.read_capture(epoch));  // durable before the epoch closed
  cache_[epoch] = t;
  while (cache_.size() > 2) cache_.erase(cache_.begin());  // keep the newest two
  return t;
}

json EpochAnchorer::prepare(std::uint64_t e) {
  std::optional<json> s = store_.summary(e);
  std::optional<EpochCapture> cap;
  std::unique_ptr<const EpochTrees> t;
  auto load = [&] {  // the capture handed over in memory, else the durable one
    if (t) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = fresh_.find(e); it != fresh_.end()) cap = std::move(it->second), fresh_.erase(it);
    }
    if (!cap) cap = store_.read_capture(e);
    t = std::make_unique<const EpochTrees>(*cap);
  };
  if (!s) {
    const auto t0 = std::chrono::steady_clock::now();
    load();
    json intents = json::array();
    for (const auto& d : t->intents()) intents.push_back(chain::to_hex(d));
    s = json{{"epoch", e},
             {"started_ms", cap->started_ms},
             {"closed_ms", cap->closed_ms},
             {"account_count", t->leaves().size()},
             {"state_root", chain::to_hex(t->state_root())},
             {"intents_root", chain::to_hex(t->intents_root())},
             {"intents", intents},
             {"published", false},
             {"anchor", nullptr}};
    store_.write_summary(e, *s);  // the roots are durable before anything leaves the process
    log_("epoch " + std::to_string(e) + " closed: " + std::to_string(t->leaves().size()) + " accounts, " +
         std::to_string(t->intents().size()) + " intents, state root " + chain::to_hex(t->state_root()) + " (" +
         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()) +
         " ms)");
  }
  if (!s->value("published", false)) {
    load();
    // The leaves, then the intent digests (a crash can liquidate more accounts in
    // one epoch than one message could list), in chunks under NATS's payload limit.
    auto publish_chunks = [&](const std::string& field, std::size_t n, std::size_t per, auto row) {
      const std::size_t chunks = (n + per - 1) / per;
      for (std::size_t k = 0; k < chunks; ++k) {
        json rows = json::array();
        for (std::size_t i = k * per; i < std::min(n, (k + 1) * per); ++i) rows.push_back(row(i));
        // The id names the content too: JetStream drops a repeat of this very chunk
        // (a retry), never a different one that happens to share epoch and index.
        const std::string body = json({{"epoch", e}, {"chunk", k}, {field, rows}}).dump();
        nats_.js_publish(epoch_chunk_subject(e, field, k), body,
                         "epoch-" + std::to_string(e) + "-" + field + "-" + std::to_string(k) + "-" + checksum_hex(body));
      }
      return chunks;
    };
    const auto& leaves = t->leaves();
    const auto& digests = t->intents();
    const std::size_t chunks =
        publish_chunks("leaves", leaves.size(), kLeavesPerChunk, [&](std::size_t i) { return leaf_json(leaves[i]); });
    const std::size_t intent_chunks =
        publish_chunks("intents", digests.size(), kIntentsPerChunk, [&](std::size_t i) { return chain::to_hex(digests[i]); });
    json summary = *s;
    summary.erase("published");
    summary.erase("anchor");
    summary.erase("intents");
    summary["intent_count"] = digests.size();
    summary["chunks"] = chunks;
    summary["intent_chunks"] = intent_chunks;
    const std::string summary_body = summary.dump();
    nats_.js_publish(epoch_summary_subject(e), summary_body, "epoch-" + std::to_string(e) + "-summary-" + checksum_hex(summary_body));
    (*s)["published"] = true;
    store_.write_summary(e, *s);
  }
  return *s;
}

void EpochAnchorer::anchor(std::uint64_t e, json s) {
  if (!s["anchor"].is_null()) return;

  chain::JsonRpcClient rpc(settings_.rpc_url, chain::RpcOptions{settings_.rpc_timeout_ms, 1, 200});
  chain::AnchorClient client(rpc, settings_.contract);
  const std::uint64_t last_epoch = client.last_epoch();  // first: it names a wrong address clearly
  if (!chain_checked_) {
    const std::uint64_t id = rpc.chain_id();
    if (id != settings_.chain_id)
      log_("warning: intents are signed for chainId " + std::to_string(settings_.chain_id) + " but " + settings_.rpc_url +
           " is chain " + std::to_string(id) + ": verifyIntent there will not recover the signer (set --chain-id " +
           std::to_string(id) + ")");
    const chain::Address poster = client.poster();
    if (poster != settings_.poster->address())
      throw logic_error("the contract's poster is " + chain::to_hex(poster) + ", not this service's " +
                        chain::to_hex(settings_.poster->address()) + " (--poster-key): it cannot anchor there");
    chain_checked_ = true;
  }
  const chain::Hash32 state_root = chain::hash_from_hex(s["state_root"].get<std::string>());
  const chain::Hash32 intents_root = chain::hash_from_hex(s["intents_root"].get<std::string>());
  const std::uint32_t count = s["account_count"].get<std::uint32_t>();
  json anchor;
  if (last_epoch >= e) {
    // Sent before a crash, or by someone else: accept it only if it is ours.
    const chain::AnchorRecord r = client.anchor_of(e);
    if (!r.anchored_at && settings_.skip_passed) {
      log_("epoch " + std::to_string(e) + " not anchored: the contract is at epoch " + std::to_string(last_epoch) + " already");
      s["anchor"] = {{"contract", chain::to_hex(settings_.contract)}, {"skipped", true}};
      store_.write_summary(e, s);
      return;
    }
    if (!r.anchored_at)
      throw logic_error("epoch " + std::to_string(e) + " was skipped on " + chain::to_hex(settings_.contract) +
                        ": a later epoch is anchored there already; this state dir and that contract disagree");
    if (r.state_root != state_root || r.intents_root != intents_root)
      throw logic_error("epoch " + std::to_string(e) + " is already anchored on " + chain::to_hex(settings_.contract) +
                        " with other roots (state " + chain::to_hex(r.state_root) +
                        "): this state dir and that contract disagree; anchoring stops here");
    anchor = {{"contract", chain::to_hex(settings_.contract)}, {"tx", nullptr}, {"found_on_chain", true}};
  } else {
    const chain::TxReceipt r = client.anchor(*settings_.poster, e, state_root, intents_root, count, settings_.receipt_timeout_ms);
    anchor = {{"contract", chain::to_hex(settings_.contract)}, {"tx", chain::to_hex(r.tx_hash)}, {"block", r.block},
              {"gas_used", r.gas_used}};
    metrics_.anchor_gas(static_cast<double>(r.gas_used));
    log_("epoch " + std::to_string(e) + " anchored: tx " + chain::to_hex(r.tx_hash) + ", block " + std::to_string(r.block) +
         ", gas " + std::to_string(r.gas_used));
  }
  s["anchor"] = anchor;
  store_.write_summary(e, s);
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_anchored_ = std::max(last_anchored_, e);
  }
  metrics_.last_anchored_epoch(static_cast<double>(e));
}

void EpochAnchorer::failed(const std::string& what) {
  ++failures_;
  metrics_.anchor_failure();
  std::lock_guard<std::mutex> lock(mu_);
  if (what != last_error_ || failures_ == 1)
    log_("epoch pipeline: " + what + "; " + std::to_string(queue_.size()) + " epoch(s) queued, retrying");
  last_error_ = what;
}

void EpochAnchorer::loop() {
  using SteadyClock = std::chrono::steady_clock;
  // After a failure, when to try again: preparing (disk, NATS) and anchoring (the chain) separately.
  auto retry_at = SteadyClock::now(), prepare_retry_at = SteadyClock::now();
  auto unprepared = [&] {
    for (std::uint64_t e : queue_)
      if (!prepared_.count(e)) return true;
    return false;
  };
  while (!stop_) {
    std::vector<std::uint64_t> queued;
    bool due = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_until(lock, std::max(retry_at, SteadyClock::now() + std::chrono::milliseconds(10)), [&] {
        return stop_ || (!queue_.empty() && SteadyClock::now() >= retry_at) ||
               (SteadyClock::now() >= prepare_retry_at && unprepared());
      });
      queued.assign(queue_.begin(), queue_.end());
      due = SteadyClock::now() >= retry_at;
    }
    if (queued.empty() || stop_) continue;
    bool preparing = true;
    try {
      // Roots and publication do not wait for the chain: every epoch gets them as
      // soon as it closes, even while an earlier one waits to be anchored.
      if (SteadyClock::now() >= prepare_retry_at)
        for (std::uint64_t e : queued)
          if (!prepared_.count(e)) prepared_.emplace(e, prepare(e));
      preparing = false;
      if (!prepared_.count(queued.front())) continue;
      const bool chain = !settings_.rpc_url.empty();
      if (chain && !due) continue;
      if (chain) anchor(queued.front(), prepared_.at(queued.front()));  // strictly in order
      std::lock_guard<std::mutex> lock(mu_);
      for (std::size_t n = chain ? 1 : queued.size(); n-- > 0;) {
        prepared_.erase(queue_.front());
        queue_.pop_front();
      }
      metrics_.epochs_pending(static_cast<double>(queue_.size()));
      if (failures_) log_("epoch pipeline recovered after " + std::to_string(failures_) + " failed attempt(s)");
      failures_ = 0;
      last_error_.clear();
    } catch (const std::exception& e) {
      failed(e.what());
      const int backoff_ms = std::min(500 << std::min(failures_, 5), 10000);
      (preparing ? prepare_retry_at : retry_at) = SteadyClock::now() + std::chrono::milliseconds(backoff_ms);
    }
  }
}

void EpochAnchorer::serve_proof(const std::string& reply, const std::string& body) {
  auto fail = [&](int code, const std::string& msg) {
    nats_.publish(reply, json({{"error", msg}}).dump(),
                  {{"Nats-Service-Error", msg}, {"Nats-Service-Error-Code", std::to_string(code)}});
    if (on_proof_error) on_proof_error(msg);
  };
  try {
    std::optional<std::uint64_t> account, epoch;
    try {
      const json req = parse_request(body, "{\"account\": <id>, \"epoch\": <n>}");
      account = uint64_field(req, "account");
      epoch = uint64_field(req, "epoch");
    } catch (const input_error& e) {
      return fail(400, e.what());
    }
    if (!account) return fail(400, "missing field 'account'");
    std::uint64_t last_closed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_closed = last_closed_;
    }
    if (!epoch) epoch = last_closed;
    if (*epoch == 0 || *epoch > last_closed)
      return fail(404, "epoch " + std::to_string(*epoch) + " is not closed yet (last closed: " + std::to_string(last_closed) + ")");
    const auto t = proof_trees(*epoch);
    auto p = t->account_proof(*account);
    if (!p) return fail(404, "account " + std::to_string(*account) + " was not in the book at epoch " + std::to_string(*epoch));
    const auto s = store_.summary(*epoch);
    (*p)["anchor"] = s ? s->value("anchor", json()) : json();
    nats_.publish(reply, p->dump());
  } catch (const std::exception& e) {
    fail(500, e.what());
  }
}

}  // namespace vaultrisk::service
