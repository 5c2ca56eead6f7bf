// RAII over the nats.c client: connection, subscriptions, messages with headers,
// JetStream streams, a durable pull consumer and de-duplicated publishing.
// Every status is checked; no exception crosses into libnats callbacks.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace vaultrisk::service {

class nats_error : public error {
 public:
  using error::error;
};

void nats_check(natsStatus s, const std::string& what);

// A received message; valid only during the callback or fetch that produced it.
class Message {
 public:
  explicit Message(natsMsg* m) : m_(m) {}
  std::string_view subject() const { return natsMsg_GetSubject(m_); }
  std::string_view data() const { return {natsMsg_GetData(m_), static_cast<std::size_t>(natsMsg_GetDataLength(m_))}; }
  std::optional<std::string_view> header(const char* key) const;
  const char* reply() const { return natsMsg_GetReply(m_); }
  natsMsg* raw() const { return m_; }

 private:
  natsMsg* m_;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

class Subscription {
 public:
  Subscription() = default;
  explicit Subscription(natsSubscription* s) : s_(s, &natsSubscription_Destroy) {}
  natsSubscription* raw() const { return s_.get(); }

 private:
  std::unique_ptr<natsSubscription, decltype(&natsSubscription_Destroy)> s_{nullptr, &natsSubscription_Destroy};
};

// A fetched JetStream message: ack or term it explicitly.
struct JsMessage {
  natsMsg* msg;
  std::uint64_t stream_seq;
  std::uint64_t pending;  // messages still waiting for this consumer after this one
  Message view() const { return Message(msg); }
};

// How to authenticate to NATS and check its certificate; empty fields are not used.
struct NatsSecurity {
  std::string creds_file;  // a .creds file (user JWT + NKey seed)
  std::string tls_ca;      // CA bundle that signed the server's certificate (turns TLS on)
  std::string tls_cert;    // client certificate and key, for servers that verify clients
  std::string tls_key;
};

class NatsClient {
 public:
  using Handler = std::function<void(const Message&)>;

  // Connects (with reconnects forever); throws nats_error.
  NatsClient(const std::string& url, const std::string& name, const NatsSecurity& security = {});
  ~NatsClient();
  NatsClient(const NatsClient&) = delete;
  NatsClient& operator=(const NatsClient&) = delete;

  void publish(std::string_view subject, std::string_view data, const Headers& headers = {});
  void respond(const Message& request, std::string_view data, const Headers& headers = {});
  // Publishes with a reply subject: forwards a request so that the answer goes straight back.
  void publish_request(const std::string& subject, const std::string& reply, std::string_view data);
  // Handler exceptions are caught and logged: a callback never throws into libnats.
  void subscribe(const std::string& subject, Handler handler, const std::string& queue = "");
  void flush();
  // ADR-32 discovery of the micro service "vaultrisk": $SRV.PING|INFO|STATS, each
  // also as .vaultrisk and .vaultrisk.<id>. Every answer carries name, id, version,
  // type and `metadata`; `details(verb)` adds that verb's own fields.
  void serve_micro(const std::string& id, const nlohmann::json& metadata,
                   std::function<nlohmann::json(const std::string& verb)> details);
  // Stops every subscription and waits until none of its handlers is running any
  // more: after it, no callback touches its owner. Idempotent; the destructor calls it.
  void stop_handlers();

  // JetStream: creates the stream if it does not exist (file storage).
  void ensure_stream(const std::string& name, const std::vector<std::string>& subjects);
  // The same with retention: a work queue (each message removed once acked) or
  // limits, and a maximum age in seconds (0: none).
  struct StreamOptions {
    bool work_queue = false;
    std::int64_t max_age_s = 0;
    std::int64_t max_msgs_per_subject = 0;  // 0: no limit
    bool allow_direct = false;  // any replica answers direct gets (set on an existing stream too)
  };
  // Replicas of every stream and bucket this client creates (3 on a 3-node cluster).
  void set_replicas(int replicas) { replicas_ = replicas; }
  // How long creating a stream or bucket keeps retrying while a JetStream cluster
  // forms (no metadata leader yet, too few peers for the replicas); then it fails.
  void set_placement_wait(int ms) { placement_wait_ms_ = ms; }
  // Removes the messages of `stream` on `subject` (wildcards allowed).
  void js_purge(const std::string& stream, const std::string& subject);

  // JetStream key-value buckets. A bucket is created when missing, with `ttl_ms`
  // (0: entries never expire) and `history` values per key.
  void kv_ensure(const std::string& bucket, std::int64_t ttl_ms, int history = 1);
  struct KvEntry {
    std::string value;
    std::uint64_t revision = 0;
  };
  std::optional<KvEntry> kv_get(const std::string& bucket, const std::string& key);
  // Only if the key holds nothing (never set, deleted or expired): its new revision,
  // or nullopt when another value is there.
  std::optional<std::uint64_t> kv_create(const std::string& bucket, const std::string& key, std::string_view value);
  // Only if the key is still at revision `last`: its new revision, or nullopt.
  std::optional<std::uint64_t> kv_update(const std::string& bucket, const std::string& key, std::string_view value,
                                         std::uint64_t last);
  std::uint64_t kv_put(const std::string& bucket, const std::string& key, std::string_view value);
  void kv_delete(const std::string& bucket, const std::string& key);
  // Keys that hold a value now.
  std::vector<std::string> kv_keys(const std::string& bucket);
  void ensure_stream(const std::string& name, const std::vector<std::string>& subjects, const StreamOptions& options);
  // Publishes with Nats-Msg-Id (JetStream de-duplicates) without waiting for the ack;
  // js_wait() waits for every outstanding one.
  // A failure is logged by the error handler and counted in js_failures().
  void js_publish_async(const std::string& subject, std::string_view data, const std::string& msg_id);
  void js_wait(int timeout_ms);
  // Publishes with Nats-Msg-Id and waits for JetStream's ack; throws nats_error.
  void js_publish(const std::string& subject, std::string_view data, const std::string& msg_id, int timeout_ms = 10000);
  // The body of the last message on `subject` in `stream`, or nullopt when there is none.
  std::optional<std::string> js_get_last(const std::string& stream, const std::string& subject);
  // The same for several subjects at once, as direct gets (the stream needs
  // allow_direct): every request in flight together, answered by any replica with the
  // raw body (no JSON, no base64). A replica may lag the leader: nullopt where the
  // answering server has no message; throws nats_error on a timeout or no responders.
  std::vector<std::optional<std::string>> js_direct_get_last(const std::string& stream,
                                                             const std::vector<std::string>& subjects,
                                                             int timeout_ms = 10000);
  // The sequence of the last message stored in `stream` now (0: empty).
  std::uint64_t js_last_seq(const std::string& stream);
  // The body of message `seq` of `stream`, or nullopt when there is none.
  std::optional<std::string> js_get(const std::string& stream, std::uint64_t seq);
  std::uint64_t js_failures() const { return js_failures_; }
  // Durable pull consumer with explicit acks, delivering `stream` from `start_seq` on,
  // in order. Any earlier consumer of that name is replaced: the caller's own durable
  // record of what it applied is the truth, not the server's ack state.
  //
  // The pull protocol is spoken here (requests on $JS.API.CONSUMER.MSG.NEXT, one in
  // flight, answered on a private inbox) rather than through natsSubscription_Fetch*:
  // libnats 3.4.1, Debian 12's, writes past its batch array in _fetch when messages
  // left over from an earlier fetch outnumber half the next batch (nats.c issue 749,
  // fixed in 3.9.0), which aborted the service under a burst of vault events.
  void pull_subscribe(const std::string& stream, const std::string& subject, const std::string& durable,
                      std::uint64_t start_seq);
  // pull_subscribe in two steps, so that the consumer can be created (a round of the
  // cluster's consensus) on another thread while other work goes on.
  void create_pull_consumer(const std::string& stream, const std::string& subject, const std::string& durable,
                            std::uint64_t start_seq);
  void bind_pull_consumer(const std::string& stream, const std::string& durable) { bind_pull(stream, durable); }
  // A durable pull consumer shared by several processes (a work queue): bound if it
  // exists, created (delivering everything) if not, never replaced. A message not
  // acked within `ack_wait_s` (or kept alive with in_progress) is redelivered.
  void pull_subscribe_shared(const std::string& stream, const std::string& subject, const std::string& durable,
                             int ack_wait_s);
  // The messages that have arrived, at once; only when none has, waits up to timeout_ms
  // for the first. At most `batch` are asked for per pull request. The caller acks or
  // terms each and then frees them.
  std::vector<JsMessage> fetch(int batch, int timeout_ms);
  void ack(const JsMessage& m);
  void term(const JsMessage& m);
  // Resets the message's ack timer (+WPI): work on it is still going on.
  void in_progress(const JsMessage& m);
  static void free(std::vector<JsMessage>& msgs);
  // Messages dropped for a subscription over its pending limits (a slow consumer).
  std::uint64_t dropped() const { return dropped_; }

 private:
  static void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  static void on_publish_error(jsCtx*, jsPubAckErr* pae, void* closure);
  static void on_async_error(natsConnection*, natsSubscription*, natsStatus err, void* closure);
  static void on_disconnected(natsConnection*, void* closure);
  static void on_reconnected(natsConnection*, void* closure);
  void send_pull_request(int batch);
  void bind_pull(const std::string& stream, const std::string& durable);
  std::atomic<std::uint64_t> js_failures_{0}, dropped_{0};
  // The pull consumer: where requests go, and the one request in flight.
  std::string next_subject_, pull_reply_;
  std::atomic<int> pull_remaining_{0};  // messages the request in flight may still deliver (0: none in flight)
  std::int64_t pull_deadline_ms_ = 0;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  natsSubscription* pull_ = nullptr;
  kvStore* kv(const std::string& bucket);
  int replicas_ = 1;
  int placement_wait_ms_ = 120000;
  struct Attempt {
    natsStatus status;
    jsErrCode jerr;
    std::string why;  // the status and the library's last error, read right after the call
  };
  static Attempt attempt(natsStatus s, jsErrCode jerr = static_cast<jsErrCode>(0));
  // Runs `create` until it succeeds, retrying while the cluster is still forming
  // (up to placement_wait_ms_); throws nats_error naming `what` otherwise.
  void placed(const std::string& what, const std::function<Attempt()>& create);
  std::vector<std::pair<std::string, kvStore*>> kvs_;
  std::vector<std::unique_ptr<Handler>> handlers_;
  std::vector<Subscription> subs_;
};

}  // namespace vaultrisk::service
