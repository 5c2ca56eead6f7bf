// nats.c wrapper.
#include "service/nats_client.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include <nlohmann/json.hpp>

namespace vaultrisk::service {

namespace {

// What a JetStream cluster answers while it is still forming (a node not yet up,
// no metadata leader, peers not yet known): creating a replicated stream then fails
// for a while and succeeds later. Anything else (bad configuration, replicas on a
// server without clustering) is final.
bool placement_transient(natsStatus s, jsErrCode jerr, const std::string& text) {
  if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS) return true;
  if (jerr == JSClusterNoPeersErr || jerr == JSClusterNotAvailErr || jerr == JSClusterNotLeaderErr ||
      jerr == JSInsufficientResourcesErr)
    return true;
  for (const char* t : {"no suitable peers", "insufficient resources", "temporarily unavailable", "no responders"})
    if (text.find(t) != std::string::npos) return true;
  return false;
}

}  // namespace

NatsClient::Attempt NatsClient::attempt(natsStatus s, jsErrCode jerr) {
  if (s == NATS_OK) return {s, jerr, {}};
  const char* last = nats_GetLastError(nullptr);  // null when the library recorded none
  return {s, jerr, std::string(natsStatus_GetText(s)) + (last ? std::string(" (") + last + ")" : std::string())};
}

void NatsClient::placed(const std::string& what, const std::function<Attempt()>& create) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto next_log = start;
  for (int delay_ms = 100;; delay_ms = std::min(delay_ms * 2, 1000)) {
    const auto [s, jerr, why] = create();
    if (s == NATS_OK) return;
    const auto waited = clock::now() - start;
    if (!placement_transient(s, jerr, why) || waited >= std::chrono::milliseconds(placement_wait_ms_))
      throw nats_error(what + ": " + why +
                       (replicas_ > 1 ? " (replicas " + std::to_string(replicas_) + ": are that many JetStream servers up?)"
                                      : std::string()));
    if (clock::now() >= next_log) {
      std::fprintf(stderr, "[vaultrisk] %s: the JetStream cluster cannot place it yet (%s); retrying for up to %d s\n",
                   what.c_str(), why.c_str(), placement_wait_ms_ / 1000);
      next_log = clock::now() + std::chrono::seconds(5);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  }
}

void nats_check(natsStatus s, const std::string& what) {
  if (s == NATS_OK) return;
  const char* last = nats_GetLastError(nullptr);  // null when the library recorded none
  throw nats_error(what + ": " + natsStatus_GetText(s) + (last ? std::string(" (") + last + ")" : std::string()));
}

std::optional<std::string_view> Message::header(const char* key) const {
  const char* v = nullptr;
  if (natsMsgHeader_Get(m_, key, &v) != NATS_OK || !v) return std::nullopt;
  return std::string_view(v);
}

NatsClient::NatsClient(const std::string& url, const std::string& name, const NatsSecurity& security) {
  natsOptions* opts = nullptr;
  nats_check(natsOptions_Create(&opts), "nats options");
  std::unique_ptr<natsOptions, decltype(&natsOptions_Destroy)> guard(opts, &natsOptions_Destroy);
  // One URL, or a cluster's several separated by commas (tried in random order).
  std::vector<std::string> urls;
  for (std::size_t at = 0; at <= url.size();) {
    const std::size_t comma = std::min(url.find(',', at), url.size());
    std::string u = url.substr(at, comma - at);
    u.erase(0, u.find_first_not_of(' '));
    u.erase(u.find_last_not_of(' ') + 1);
    if (!u.empty()) urls.push_back(u);
    at = comma + 1;
  }
  if (urls.size() <= 1) {
    nats_check(natsOptions_SetURL(opts, url.c_str()), "nats url " + url);
  } else {
    std::vector<const char*> ptrs;
    for (const auto& u : urls) ptrs.push_back(u.c_str());
    nats_check(natsOptions_SetServers(opts, ptrs.data(), static_cast<int>(ptrs.size())), "nats urls " + url);
  }
  nats_check(natsOptions_SetName(opts, name.c_str()), "nats name");
  if (!security.creds_file.empty())
    nats_check(natsOptions_SetUserCredentialsFromFiles(opts, security.creds_file.c_str(), nullptr),
               "NATS credentials " + security.creds_file);
  if (!security.tls_ca.empty()) {
    nats_check(natsOptions_SetSecure(opts, true), "TLS");
    nats_check(natsOptions_LoadCATrustedCertificates(opts, security.tls_ca.c_str()), "TLS CA " + security.tls_ca);
  }
  if (!security.tls_cert.empty() || !security.tls_key.empty()) {
    if (security.tls_cert.empty() || security.tls_key.empty()) throw input_error("--tls-cert and --tls-key go together");
    nats_check(natsOptions_LoadCertificatesChain(opts, security.tls_cert.c_str(), security.tls_key.c_str()),
               "TLS client certificate " + security.tls_cert);
  }
  nats_check(natsOptions_SetMaxReconnect(opts, -1), "nats reconnect");
  nats_check(natsOptions_SetReconnectWait(opts, 250), "nats reconnect wait");
  nats_check(natsOptions_SetErrorHandler(opts, &NatsClient::on_async_error, this), "nats error handler");
  nats_check(natsOptions_SetDisconnectedCB(opts, &NatsClient::on_disconnected, this), "nats disconnect handler");
  nats_check(natsOptions_SetReconnectedCB(opts, &NatsClient::on_reconnected, this), "nats reconnect handler");
  nats_check(natsConnection_Connect(&nc_, opts), "connect to " + url);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = 65536;
  jo.PublishAsync.ErrHandler = &NatsClient::on_publish_error;
  jo.PublishAsync.ErrHandlerClosure = this;
  nats_check(natsConnection_JetStream(&js_, nc_, &jo), "jetstream context");
}

void NatsClient::serve_micro(const std::string& id, const nlohmann::json& metadata,
                             std::function<nlohmann::json(const std::string& verb)> details) {
  static const char* const types[][2] = {{"PING", "io.nats.micro.v1.ping_response"},
                                         {"INFO", "io.nats.micro.v1.info_response"},
                                         {"STATS", "io.nats.micro.v1.stats_response"}};
  for (const auto& [verb, type] : types) {
    auto handler = [this, id, metadata, details, verb = std::string(verb), type = std::string(type)](const Message& m) {
      nlohmann::json r = {{"name", "vaultrisk"}, {"id", id}, {"version", "0.1.0"}, {"metadata", metadata}, {"type", type}};
      r.update(details(verb));
      respond(m, r.dump());
    };
    subscribe("$SRV." + std::string(verb), handler);
    subscribe("$SRV." + std::string(verb) + ".vaultrisk", handler);
    subscribe("$SRV." + std::string(verb) + ".vaultrisk." + id, handler);
  }
}

void NatsClient::stop_handlers() {
  // Unsubscribe everything first, then wait for each handler in flight to return.
  for (auto& sub : subs_)
    if (sub.raw()) natsSubscription_Drain(sub.raw());
  for (auto& sub : subs_)
    if (sub.raw()) natsSubscription_WaitForDrainCompletion(sub.raw(), 10000);
  subs_.clear();
}

NatsClient::~NatsClient() {
  stop_handlers();
  if (pull_) natsSubscription_Destroy(pull_);
  for (auto& [name, k] : kvs_) kvStore_Destroy(k);
  subs_.clear();
  if (js_) jsCtx_Destroy(js_);
  if (nc_) {
    natsConnection_Drain(nc_);
    natsConnection_Destroy(nc_);
  }
}

namespace {
natsMsg* make_msg(std::string_view subject, const char* reply, std::string_view data, const Headers& headers) {
  natsMsg* m = nullptr;
  const std::string subj(subject);
  nats_check(natsMsg_Create(&m, subj.c_str(), reply, data.data(), static_cast<int>(data.size())), "message " + subj);
  for (const auto& [k, v] : headers) {
    const natsStatus s = natsMsgHeader_Set(m, k.c_str(), v.c_str());
    if (s != NATS_OK) {
      natsMsg_Destroy(m);
      nats_check(s, "header " + k);
    }
  }
  return m;
}
}  // namespace

void NatsClient::publish(std::string_view subject, std::string_view data, const Headers& headers) {
  natsMsg* m = make_msg(subject, nullptr, data, headers);
  const natsStatus s = natsConnection_PublishMsg(nc_, m);
  natsMsg_Destroy(m);
  nats_check(s, "publish " + std::string(subject));
}

void NatsClient::respond(const Message& request, std::string_view data, const Headers& headers) {
  if (!request.reply()) return;
  publish(request.reply(), data, headers);
}

void NatsClient::on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  try {
    (*static_cast<Handler*>(closure))(Message(msg));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[vaultrisk] error in handler for %s: %s\n", natsMsg_GetSubject(msg), e.what());
  } catch (...) {
    std::fprintf(stderr, "[vaultrisk] unknown error in handler for %s\n", natsMsg_GetSubject(msg));
  }
  natsMsg_Destroy(msg);
}

void NatsClient::subscribe(const std::string& subject, Handler handler, const std::string& queue) {
  handlers_.push_back(std::make_unique<Handler>(std::move(handler)));
  natsSubscription* s = nullptr;
  if (queue.empty())
    nats_check(natsConnection_Subscribe(&s, nc_, subject.c_str(), &NatsClient::on_message, handlers_.back().get()),
               "subscribe " + subject);
  else
    nats_check(natsConnection_QueueSubscribe(&s, nc_, subject.c_str(), queue.c_str(), &NatsClient::on_message,
                                             handlers_.back().get()),
               "subscribe " + subject);
  // Bounded: a flood (or a few huge messages) is dropped by the client and counted,
  // instead of growing memory without limit. Ticks coalesce per underlying anyway.
  nats_check(natsSubscription_SetPendingLimits(s, 65536, 64 * 1024 * 1024), "pending limits " + subject);
  subs_.emplace_back(s);
}

void NatsClient::on_async_error(natsConnection*, natsSubscription* sub, natsStatus err, void* closure) {
  auto* self = static_cast<NatsClient*>(closure);
  if (err == NATS_SLOW_CONSUMER) {
    ++self->dropped_;
    std::fprintf(stderr, "[vaultrisk] slow consumer on %s: messages over the pending limits were dropped\n",
                 sub ? natsSubscription_GetSubject(sub) : "?");
    return;
  }
  std::fprintf(stderr, "[vaultrisk] NATS error: %s\n", natsStatus_GetText(err));
}

void NatsClient::on_disconnected(natsConnection*, void*) { std::fprintf(stderr, "[vaultrisk] NATS disconnected; reconnecting\n"); }
void NatsClient::on_reconnected(natsConnection*, void* closure) {
  static_cast<NatsClient*>(closure)->pull_remaining_ = 0;  // a pull request does not survive a reconnect: ask again
  std::fprintf(stderr, "[vaultrisk] NATS reconnected\n");
}

void NatsClient::publish_request(const std::string& subject, const std::string& reply, std::string_view data) {
  nats_check(natsConnection_PublishRequest(nc_, subject.c_str(), reply.c_str(), data.data(), static_cast<int>(data.size())),
             "publish " + subject);
}

void NatsClient::flush() { nats_check(natsConnection_Flush(nc_), "flush"); }

void NatsClient::ensure_stream(const std::string& name, const std::vector<std::string>& subjects) {
  ensure_stream(name, subjects, StreamOptions{});
}

void NatsClient::ensure_stream(const std::string& name, const std::vector<std::string>& subjects,
                               const StreamOptions& options) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (js_GetStreamInfo(&si, js_, name.c_str(), nullptr, &jerr) == NATS_OK) {
    // A stream made by an earlier version keeps its configuration, except that
    // direct gets are turned on where they are now wanted.
    if (options.allow_direct && !si->Config->AllowDirect) {
      si->Config->AllowDirect = true;
      jsStreamInfo* updated = nullptr;
      nats_check(js_UpdateStream(&updated, js_, si->Config, nullptr, &jerr), "allow direct gets on stream " + name);
      jsStreamInfo_Destroy(updated);
    }
    jsStreamInfo_Destroy(si);
    return;
  }
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name.c_str();
  std::vector<const char*> subj;
  for (const auto& s : subjects) subj.push_back(s.c_str());
  cfg.Subjects = subj.data();
  cfg.SubjectsLen = static_cast<int>(subj.size());
  cfg.Storage = js_FileStorage;
  if (options.work_queue) cfg.Retention = js_WorkQueuePolicy;
  if (options.max_age_s > 0) cfg.MaxAge = options.max_age_s * 1000LL * 1000 * 1000;  // ns
  if (options.max_msgs_per_subject > 0) cfg.MaxMsgsPerSubject = options.max_msgs_per_subject;
  cfg.AllowDirect = options.allow_direct;
  cfg.Replicas = replicas_;
  placed("create stream " + name, [&] {
    // Another instance may have created it meanwhile: then it is there.
    jerr = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(&si, js_, name.c_str(), nullptr, &jerr) == NATS_OK) return attempt(NATS_OK);
    const natsStatus added = js_AddStream(&si, js_, &cfg, nullptr, &jerr);
    return attempt(added, jerr);
  });
  jsStreamInfo_Destroy(si);
}

void NatsClient::on_publish_error(jsCtx*, jsPubAckErr* pae, void* closure) {
  auto* self = static_cast<NatsClient*>(closure);
  ++self->js_failures_;
  std::fprintf(stderr, "[vaultrisk] JetStream publish to %s failed: %s\n", natsMsg_GetSubject(pae->Msg),
               pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
}

void NatsClient::js_publish_async(const std::string& subject, std::string_view data, const std::string& msg_id) {
  natsMsg* m = make_msg(subject, nullptr, data, {{"Nats-Msg-Id", msg_id}});
  const natsStatus s = js_PublishMsgAsync(js_, &m, nullptr);  // takes ownership on success
  if (m) natsMsg_Destroy(m);
  nats_check(s, "publish to JetStream " + subject);
}

void NatsClient::js_wait(int timeout_ms) {
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = timeout_ms;
  nats_check(js_PublishAsyncComplete(js_, &po), "waiting for JetStream acks");
}

void NatsClient::js_publish(const std::string& subject, std::string_view data, const std::string& msg_id, int timeout_ms) {
  natsMsg* m = make_msg(subject, nullptr, data, {{"Nats-Msg-Id", msg_id}});
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = timeout_ms;
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_PublishMsg(&ack, js_, m, &po, &jerr);
  natsMsg_Destroy(m);
  if (ack) jsPubAck_Destroy(ack);
  nats_check(s, "publish to JetStream " + subject);
}

std::optional<std::string> NatsClient::js_get_last(const std::string& stream, const std::string& subject) {
  natsMsg* m = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetLastMsg(&m, js_, stream.c_str(), subject.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) return std::nullopt;
  nats_check(s, "read " + subject + " from stream " + stream);
  std::string body(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
  natsMsg_Destroy(m);
  return body;
}

std::vector<std::optional<std::string>> NatsClient::js_direct_get_last(const std::string& stream,
                                                                       const std::vector<std::string>& subjects,
                                                                       int timeout_ms) {
  std::vector<std::optional<std::string>> out(subjects.size());
  if (subjects.empty()) return out;
  char* inbox = nullptr;
  nats_check(natsInbox_Create(&inbox), "inbox");
  const std::string base = inbox;
  natsInbox_Destroy(inbox);
  natsSubscription* raw = nullptr;
  nats_check(natsConnection_SubscribeSync(&raw, nc_, (base + ".*").c_str()), "subscribe " + base);
  const Subscription sub(raw);
  nats_check(natsSubscription_SetPendingLimits(raw, -1, -1), "pending limits " + base);
  const std::string api = "$JS.API.DIRECT.GET." + stream;
  for (std::size_t i = 0; i < subjects.size(); ++i) {
    const std::string req = nlohmann::json({{"last_by_subj", subjects[i]}}).dump();
    publish_request(api, base + "." + std::to_string(i), req);
  }
  nats_check(natsConnection_Flush(nc_), "flush");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (std::size_t got = 0; got < subjects.size();) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    natsMsg* m = nullptr;
    const natsStatus s = natsSubscription_NextMsg(&m, raw, std::max<std::int64_t>(left, 1));
    if (s == NATS_TIMEOUT)
      throw nats_error("direct get from stream " + stream + ": " + std::to_string(subjects.size() - got) + " of " +
                       std::to_string(subjects.size()) + " answers missing after " + std::to_string(timeout_ms) + " ms");
    nats_check(s, "direct get from stream " + stream);
    std::unique_ptr<natsMsg, decltype(&natsMsg_Destroy)> guard(m, &natsMsg_Destroy);
    const std::string_view reply = natsMsg_GetSubject(m);
    std::size_t i = 0;
    const auto tail = reply.substr(reply.rfind('.') + 1);
    if (std::from_chars(tail.data(), tail.data() + tail.size(), i).ec != std::errc() || i >= subjects.size()) continue;
    ++got;
    const char* status = nullptr;
    if (natsMsg_GetDataLength(m) == 0 && natsMsgHeader_Get(m, "Status", &status) == NATS_OK && status) {
      if (std::string_view(status) == "404") continue;  // nothing on that subject (here)
      throw nats_error("direct get of " + subjects[i] + " from stream " + stream + ": status " + status +
                       (std::string_view(status) == "503" ? " (no responders: does the stream allow direct gets?)" : ""));
    }
    out[i] = std::string(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
  }
  return out;
}

std::uint64_t NatsClient::js_last_seq(const std::string& stream) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  nats_check(js_GetStreamInfo(&si, js_, stream.c_str(), nullptr, &jerr), "stream info " + stream);
  const std::uint64_t last = si->State.LastSeq;
  jsStreamInfo_Destroy(si);
  return last;
}

void NatsClient::js_purge(const std::string& stream, const std::string& subject) {
  jsOptions o;
  jsOptions_Init(&o);
  o.Stream.Purge.Subject = subject.c_str();
  jsErrCode jerr = static_cast<jsErrCode>(0);
  nats_check(js_PurgeStream(js_, stream.c_str(), &o, &jerr), "purge " + subject + " from stream " + stream);
}

kvStore* NatsClient::kv(const std::string& bucket) {
  for (auto& [name, k] : kvs_)
    if (name == bucket) return k;
  kvStore* k = nullptr;
  nats_check(js_KeyValue(&k, js_, bucket.c_str()), "key-value bucket " + bucket);
  kvs_.emplace_back(bucket, k);
  return k;
}

void NatsClient::kv_ensure(const std::string& bucket, std::int64_t ttl_ms, int history) {
  kvStore* k = nullptr;
  if (js_KeyValue(&k, js_, bucket.c_str()) == NATS_OK) {
    kvs_.emplace_back(bucket, k);
    return;
  }
  kvConfig c;
  kvConfig_Init(&c);
  c.Bucket = bucket.c_str();
  c.History = static_cast<uint8_t>(history);
  c.TTL = ttl_ms * 1000 * 1000;  // nats.c passes it on as the stream's MaxAge, in ns
  c.StorageType = js_FileStorage;
  c.Replicas = replicas_;
  // Two instances starting at once: the second create may fail; bind then.
  placed("create key-value bucket " + bucket, [&] {
    const natsStatus created = js_CreateKeyValue(&k, js_, &c);
    Attempt a = attempt(created);
    if (created != NATS_OK && js_KeyValue(&k, js_, bucket.c_str()) == NATS_OK) return attempt(NATS_OK);
    return a;
  });
  kvs_.emplace_back(bucket, k);
}

std::optional<NatsClient::KvEntry> NatsClient::kv_get(const std::string& bucket, const std::string& key) {
  kvEntry* e = nullptr;
  const natsStatus s = kvStore_Get(&e, kv(bucket), key.c_str());
  if (s == NATS_NOT_FOUND) return std::nullopt;
  nats_check(s, "read " + key + " from bucket " + bucket);
  KvEntry out{std::string(static_cast<const char*>(kvEntry_Value(e)), static_cast<std::size_t>(kvEntry_ValueLen(e))),
              kvEntry_Revision(e)};
  kvEntry_Destroy(e);
  return out;
}

std::optional<std::uint64_t> NatsClient::kv_create(const std::string& bucket, const std::string& key, std::string_view value) {
  std::uint64_t rev = 0;
  const natsStatus s = kvStore_Create(&rev, kv(bucket), key.c_str(), value.data(), static_cast<int>(value.size()));
  if (s == NATS_OK) return rev;
  if (s == NATS_ERR) {  // "wrong last sequence": the key holds a value
    return std::nullopt;
  }
  nats_check(s, "create " + key + " in bucket " + bucket);
  return std::nullopt;
}

std::optional<std::uint64_t> NatsClient::kv_update(const std::string& bucket, const std::string& key, std::string_view value,
                                                   std::uint64_t last) {
  std::uint64_t rev = 0;
  const natsStatus s = kvStore_Update(&rev, kv(bucket), key.c_str(), value.data(), static_cast<int>(value.size()), last);
  if (s == NATS_OK) return rev;
  if (s == NATS_ERR) {
    return std::nullopt;
  }
  nats_check(s, "update " + key + " in bucket " + bucket);
  return std::nullopt;
}

std::uint64_t NatsClient::kv_put(const std::string& bucket, const std::string& key, std::string_view value) {
  std::uint64_t rev = 0;
  nats_check(kvStore_Put(&rev, kv(bucket), key.c_str(), value.data(), static_cast<int>(value.size())),
             "write " + key + " to bucket " + bucket);
  return rev;
}

void NatsClient::kv_delete(const std::string& bucket, const std::string& key) {
  nats_check(kvStore_Delete(kv(bucket), key.c_str()), "delete " + key + " from bucket " + bucket);
}

std::vector<std::string> NatsClient::kv_keys(const std::string& bucket) {
  kvKeysList list;
  const natsStatus s = kvStore_Keys(&list, kv(bucket), nullptr);
  std::vector<std::string> out;
  if (s == NATS_NOT_FOUND) return out;
  nats_check(s, "keys of bucket " + bucket);
  for (int i = 0; i < list.Count; ++i) out.emplace_back(list.Keys[i]);
  kvKeysList_Destroy(&list);
  return out;
}

std::optional<std::string> NatsClient::js_get(const std::string& stream, std::uint64_t seq) {
  natsMsg* m = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetMsg(&m, js_, stream.c_str(), seq, nullptr, &jerr);
  if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) return std::nullopt;
  nats_check(s, "read message " + std::to_string(seq) + " of stream " + stream);
  std::string body(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
  natsMsg_Destroy(m);
  return body;
}

void NatsClient::pull_subscribe(const std::string& stream, const std::string& subject, const std::string& durable,
                                std::uint64_t start_seq) {
  create_pull_consumer(stream, subject, durable, start_seq);
  bind_pull(stream, durable);
}

void NatsClient::create_pull_consumer(const std::string& stream, const std::string& subject, const std::string& durable,
                                      std::uint64_t start_seq) {
  jsErrCode derr = static_cast<jsErrCode>(0);
  js_DeleteConsumer(js_, stream.c_str(), durable.c_str(), nullptr, &derr);  // absent is fine
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = durable.c_str();
  cc.AckPolicy = js_AckExplicit;
  cc.DeliverPolicy = js_DeliverByStartSequence;
  cc.OptStartSeq = start_seq;
  cc.FilterSubject = subject.c_str();
  cc.AckWait = 30LL * 1000 * 1000 * 1000;  // ns
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  nats_check(js_AddConsumer(&ci, js_, stream.c_str(), &cc, nullptr, &jerr), "durable consumer " + durable + " on " + subject);
  jsConsumerInfo_Destroy(ci);
}

void NatsClient::pull_subscribe_shared(const std::string& stream, const std::string& subject, const std::string& durable,
                                       int ack_wait_s) {
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (js_GetConsumerInfo(&ci, js_, stream.c_str(), durable.c_str(), nullptr, &jerr) != NATS_OK) {
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable.c_str();
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.FilterSubject = subject.c_str();
    cc.AckWait = static_cast<int64_t>(ack_wait_s) * 1000 * 1000 * 1000;  // ns
    ci = nullptr;
    jerr = static_cast<jsErrCode>(0);
    // Two workers starting at once: the second add may fail as "already exists"; bind then.
    if (js_AddConsumer(&ci, js_, stream.c_str(), &cc, nullptr, &jerr) != NATS_OK) {
      ci = nullptr;
      nats_check(js_GetConsumerInfo(&ci, js_, stream.c_str(), durable.c_str(), nullptr, &jerr),
                 "shared consumer " + durable + " on " + stream);
    }
  }
  jsConsumerInfo_Destroy(ci);
  bind_pull(stream, durable);
}

void NatsClient::bind_pull(const std::string& stream, const std::string& durable) {
  char* inbox = nullptr;
  nats_check(natsInbox_Create(&inbox), "inbox");
  const std::string reply = inbox;
  natsInbox_Destroy(inbox);
  if (pull_) natsSubscription_Destroy(pull_);
  pull_ = nullptr;
  nats_check(natsConnection_SubscribeSync(&pull_, nc_, reply.c_str()), "subscribe " + reply);
  nats_check(natsSubscription_SetPendingLimits(pull_, 65536, 256 * 1024 * 1024), "pending limits " + reply);
  pull_reply_ = reply;
  next_subject_ = "$JS.API.CONSUMER.MSG.NEXT." + stream + "." + durable;
  pull_remaining_ = 0;
}

namespace {
constexpr std::int64_t kPullExpiresMs = 5000;
std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

void NatsClient::send_pull_request(int batch) {
  const std::string req = nlohmann::json({{"batch", batch}, {"expires", kPullExpiresMs * 1000000}}).dump();
  nats_check(natsConnection_PublishRequest(nc_, next_subject_.c_str(), pull_reply_.c_str(), req.data(), static_cast<int>(req.size())),
             "pull request " + next_subject_);
  pull_remaining_ = batch;
  // The server answers 408 when the request expires; should that answer be lost (a
  // reconnect), the next request goes out a second later anyway.
  pull_deadline_ms_ = steady_ms() + kPullExpiresMs + 1000;
}

std::vector<JsMessage> NatsClient::fetch(int batch, int timeout_ms) {
  std::vector<JsMessage> out;
  if (pull_remaining_ <= 0 || steady_ms() > pull_deadline_ms_) send_pull_request(batch);
  for (std::int64_t wait = timeout_ms;; wait = 0) {
    natsMsg* m = nullptr;
    const natsStatus s = natsSubscription_NextMsg(&m, pull_, wait);  // 0: only what has already arrived
    if (s == NATS_TIMEOUT) break;
    if (s == NATS_SLOW_CONSUMER) {  // dropped messages are redelivered after AckWait
      ++dropped_;
      continue;
    }
    nats_check(s, "fetch vault events");
    const char* status = nullptr;
    if (natsMsg_GetDataLength(m) == 0 && natsMsgHeader_Get(m, "Status", &status) == NATS_OK && status) {
      // 404/408: the request is over (nothing pending, or it expired); 409: the server
      // ended it (consumer deleted, too many waiting): ask again either way. 100: heartbeat.
      if (std::strncmp(status, "100", 3) != 0) pull_remaining_ = 0;
      natsMsg_Destroy(m);
      if (pull_remaining_ == 0) break;  // the next fetch sends the next request
      continue;
    }
    jsMsgMetaData* meta = nullptr;
    std::uint64_t seq = 0, pending = 0;
    if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
      seq = meta->Sequence.Stream;
      pending = meta->NumPending;
      jsMsgMetaData_Destroy(meta);
    }
    out.push_back(JsMessage{m, seq, pending});
    if (--pull_remaining_ <= 0) break;  // that request is spent: the next fetch asks again
  }
  return out;
}

void NatsClient::ack(const JsMessage& m) {
  const char* reply = natsMsg_GetReply(m.msg);
  if (reply) nats_check(natsConnection_PublishString(nc_, reply, "+ACK"), "ack");
}
void NatsClient::in_progress(const JsMessage& m) {
  const char* reply = natsMsg_GetReply(m.msg);
  if (reply && *reply) nats_check(natsConnection_PublishString(nc_, reply, "+WPI"), "in-progress ack");
}

void NatsClient::term(const JsMessage& m) {
  const char* reply = natsMsg_GetReply(m.msg);
  if (reply) nats_check(natsConnection_PublishString(nc_, reply, "+TERM"), "term");
}
void NatsClient::free(std::vector<JsMessage>& msgs) {
  for (auto& m : msgs) natsMsg_Destroy(m.msg);
  msgs.clear();
}

}  // namespace vaultrisk::service
