// Prometheus metrics (text exposition on /metrics).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace vaultrisk::service {

class Metrics {
 public:
  // port < 0: no HTTP endpoint; port 0: any free port (see port()).
  Metrics(int port, const std::string& bind = "127.0.0.1");
  int port() const { return port_; }

  void tick_accepted() { ticks_accepted_->Increment(); }
  void tick_rejected(const std::string& reason) { ticks_rejected_->Add({{"reason", reason}}).Increment(); }
  void vault_event(const std::string& result) { vault_events_->Add({{"result", result}}).Increment(); }
  void tick_to_alert(double seconds) { tick_to_alert_->Observe(seconds); }
  void wal_sync(double seconds) { wal_sync_->Observe(seconds); }  // from the WAL's thread
  void revaluation(double seconds, bool full) { (full ? reval_full_ : reval_incremental_)->Observe(seconds); }
  void accounts(const char* status, double n) { accounts_->Add({{"status", status}}).Set(n); }
  // In a cluster, per partition (SPEC §9).
  void accounts(const char* status, double n, std::uint32_t partition) {
    accounts_->Add({{"status", status}, {"partition", std::to_string(partition)}}).Set(n);
  }
  void partitions_owned(double n) { partitions_owned_->Set(n); }
  void takeover(double seconds, double alerts) {
    takeovers_->Increment();
    takeover_seconds_->Observe(seconds);
    takeover_alerts_->Increment(alerts);
  }
  void lease_lost() { leases_lost_->Increment(); }
  void epoch_skipped() { epochs_skipped_->Increment(); }
  void snapshot_published(double bytes) { snapshot_bytes_->Set(bytes); }
  void intent() { intents_->Increment(); }
  void alert() { alerts_->Increment(); }
  void consumer_lag(double n) { lag_->Set(n); }
  void nats_dropped(double n) { dropped_->Set(n); }
  void epoch(double e) { epoch_->Set(e); }
  void epochs_pending(double n) { epochs_pending_->Set(n); }
  void last_anchored_epoch(double e) { last_anchored_->Set(e); }
  void anchor_gas(double g) { anchor_gas_->Set(g); }
  void anchor_failure() { anchor_failures_->Increment(); }
  // A step that failed and was skipped (stage: vault_event, alert, intent, api, ...).
  void failure(const std::string& stage) { failures_->Add({{"stage", stage}}).Increment(); }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = -1;
  prometheus::Counter* ticks_accepted_;
  prometheus::Family<prometheus::Counter>* ticks_rejected_;
  prometheus::Family<prometheus::Counter>* vault_events_;
  prometheus::Histogram* tick_to_alert_;
  prometheus::Histogram* wal_sync_;
  prometheus::Histogram* reval_full_;
  prometheus::Histogram* reval_incremental_;
  prometheus::Family<prometheus::Gauge>* accounts_;
  prometheus::Counter* intents_;
  prometheus::Counter* alerts_;
  prometheus::Gauge* lag_;
  prometheus::Gauge* dropped_;
  prometheus::Gauge* epoch_;
  prometheus::Gauge* epochs_pending_;
  prometheus::Gauge* last_anchored_;
  prometheus::Gauge* anchor_gas_;
  prometheus::Counter* anchor_failures_;
  prometheus::Family<prometheus::Counter>* failures_;
  prometheus::Gauge* partitions_owned_;
  prometheus::Counter* takeovers_;
  prometheus::Histogram* takeover_seconds_;
  prometheus::Counter* takeover_alerts_;
  prometheus::Counter* leases_lost_;
  prometheus::Counter* epochs_skipped_;
  prometheus::Gauge* snapshot_bytes_;
};

}  // namespace vaultrisk::service
