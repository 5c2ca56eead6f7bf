// Metric families and the HTTP exposer.
#include "service/metrics.hpp"

namespace vaultrisk::service {

Metrics::Metrics(int port, const std::string& bind) : registry_(std::make_shared<prometheus::Registry>()) {
  using namespace prometheus;
  const Histogram::BucketBoundaries latency = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5};
  ticks_accepted_ = &BuildCounter().Name("vaultrisk_ticks_accepted_total").Help("Oracle ticks accepted").Register(*registry_).Add({});
  ticks_rejected_ = &BuildCounter().Name("vaultrisk_ticks_rejected_total").Help("Oracle ticks rejected, by reason").Register(*registry_);
  vault_events_ = &BuildCounter().Name("vaultrisk_vault_events_total").Help("Vault events by result (applied, duplicate, rejected)").Register(*registry_);
  tick_to_alert_ = &BuildHistogram().Name("vaultrisk_tick_to_alert_seconds").Help("Tick receipt to alert publication").Register(*registry_).Add({}, latency);
  wal_sync_ = &BuildHistogram().Name("vaultrisk_wal_sync_seconds").Help("Write-ahead log write and fdatasync, on the WAL's own thread").Register(*registry_).Add({}, latency);
  auto& reval = BuildHistogram().Name("vaultrisk_revaluation_seconds").Help("Engine revaluation time").Register(*registry_);
  reval_full_ = &reval.Add({{"kind", "full"}}, latency);
  reval_incremental_ = &reval.Add({{"kind", "incremental"}}, latency);
  accounts_ = &BuildGauge().Name("vaultrisk_accounts").Help("Accounts per status").Register(*registry_);
  intents_ = &BuildCounter().Name("vaultrisk_intents_total").Help("Signed liquidation intents published").Register(*registry_).Add({});
  alerts_ = &BuildCounter().Name("vaultrisk_alerts_total").Help("Status-change alerts published").Register(*registry_).Add({});
  lag_ = &BuildGauge().Name("vaultrisk_vault_consumer_lag").Help("Vault events waiting in JetStream for this service").Register(*registry_).Add({});
  dropped_ = &BuildGauge().Name("vaultrisk_nats_dropped_total").Help("Messages nats.c dropped over a subscription's pending limits (slow consumer)").Register(*registry_).Add({});
  epoch_ = &BuildGauge().Name("vaultrisk_epoch").Help("Current epoch").Register(*registry_).Add({});
  epochs_pending_ = &BuildGauge().Name("vaultrisk_epochs_pending").Help("Closed epochs not yet published or anchored").Register(*registry_).Add({});
  last_anchored_ = &BuildGauge().Name("vaultrisk_last_anchored_epoch").Help("Latest epoch anchored on-chain").Register(*registry_).Add({});
  anchor_gas_ = &BuildGauge().Name("vaultrisk_anchor_gas_used").Help("Gas used by the latest anchor transaction").Register(*registry_).Add({});
  failures_ = &BuildCounter().Name("vaultrisk_failures_total").Help("Steps that failed, were logged and skipped, by stage").Register(*registry_);
  anchor_failures_ = &BuildCounter().Name("vaultrisk_epoch_pipeline_failures_total").Help("Failed attempts to publish or anchor an epoch (retried)").Register(*registry_).Add({});
  partitions_owned_ = &BuildGauge().Name("vaultrisk_partitions_owned").Help("Partitions this instance owns (cluster)").Register(*registry_).Add({});
  takeovers_ = &BuildCounter().Name("vaultrisk_partition_takeovers_total").Help("Partitions this instance took over (cluster)").Register(*registry_).Add({});
  takeover_seconds_ = &BuildHistogram().Name("vaultrisk_takeover_seconds").Help("Lease acquired to the partition's first evaluation (cluster)").Register(*registry_).Add({}, Histogram::BucketBoundaries{0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30});
  takeover_alerts_ = &BuildCounter().Name("vaultrisk_takeover_alerts_total").Help("Alerts of the first evaluation after a takeover: status changes since the partition's last snapshot in NATS, some of which the previous owner may have sent already (cluster)").Register(*registry_).Add({});
  leases_lost_ = &BuildCounter().Name("vaultrisk_leases_lost_total").Help("Partition leases this instance failed to renew in time (cluster)").Register(*registry_).Add({});
  epochs_skipped_ = &BuildCounter().Name("vaultrisk_epochs_skipped_total").Help("Epochs not anchored because a partition had no owner when they closed (cluster)").Register(*registry_).Add({});
  snapshot_bytes_ = &BuildGauge().Name("vaultrisk_partition_snapshot_bytes").Help("Size of the latest partition snapshot stored in NATS (cluster)").Register(*registry_).Add({});
  if (port >= 0) {
    exposer_ = std::make_unique<Exposer>(bind + ":" + std::to_string(port));
    exposer_->RegisterCollectable(registry_);
    const auto ports = exposer_->GetListeningPorts();
    port_ = ports.empty() ? port : ports.front();
  }
}

}  // namespace vaultrisk::service
