// nats.c wrapper.
#include "service/nats_client.hpp"

#include <cstdio>

namespace vaultrisk::service {

void nats_check(natsStatus s, const std::string& what) {
  if (s != NATS_OK) throw nats_error(what + ": " + natsStatus_GetText(s) + " (" + nats_GetLastError(nullptr) + ")");
}

std::optional<std::string_view> Message::header(const char* key) const {
  const char* v = nullptr;
  if (natsMsgHeader_Get(m_, key, &v) != NATS_OK || !v) return std::nullopt;
  return std::string_view(v);
}

NatsClient::NatsClient(const std::string& url, const std::string& name) {
  natsOptions* opts = nullptr;
  nats_check(natsOptions_Create(&opts), "nats options");
  std::unique_ptr<natsOptions, decltype(&natsOptions_Destroy)> guard(opts, &natsOptions_Destroy);
  nats_check(natsOptions_SetURL(opts, url.c_str()), "nats url " + url);
  nats_check(natsOptions_SetName(opts, name.c_str()), "nats name");
  nats_check(natsOptions_SetMaxReconnect(opts, -1), "nats reconnect");
  nats_check(natsOptions_SetReconnectWait(opts, 250), "nats reconnect wait");
  nats_check(natsConnection_Connect(&nc_, opts), "connect to " + url);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = 65536;
  jo.PublishAsync.ErrHandler = &NatsClient::on_publish_error;
  jo.PublishAsync.ErrHandlerClosure = this;
  nats_check(natsConnection_JetStream(&js_, nc_, &jo), "jetstream context");
}

NatsClient::~NatsClient() {
  if (pull_) natsSubscription_Destroy(pull_);
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
  natsSubscription_SetPendingLimits(s, -1, -1);  // never drop: backlog shows in metrics instead
  subs_.emplace_back(s);
}

void NatsClient::flush() { nats_check(natsConnection_Flush(nc_), "flush"); }

void NatsClient::ensure_stream(const std::string& name, const std::vector<std::string>& subjects) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (js_GetStreamInfo(&si, js_, name.c_str(), nullptr, &jerr) == NATS_OK) {
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
  nats_check(js_AddStream(&si, js_, &cfg, nullptr, &jerr), "create stream " + name);
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
  jsErrCode derr = static_cast<jsErrCode>(0);
  js_DeleteConsumer(js_, stream.c_str(), durable.c_str(), nullptr, &derr);  // absent is fine
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Config.Durable = durable.c_str();
  so.Config.AckPolicy = js_AckExplicit;
  so.Config.DeliverPolicy = js_DeliverByStartSequence;
  so.Config.OptStartSeq = start_seq;
  so.Config.AckWait = 30LL * 1000 * 1000 * 1000;  // ns
  jsErrCode jerr = static_cast<jsErrCode>(0);
  nats_check(js_PullSubscribe(&pull_, js_, subject.c_str(), durable.c_str(), nullptr, &so, &jerr),
             "durable consumer " + durable + " on " + subject);
}

std::vector<JsMessage> NatsClient::fetch(int batch, int timeout_ms) {
  std::vector<JsMessage> out;
  natsMsgList list{nullptr, 0};
  // Whatever is ready, at once; only when nothing is, wait for the first message.
  // (A plain Fetch(batch) would sit out its timeout whenever fewer are pending.)
  jsFetchRequest req;
  jsFetchRequest_Init(&req);
  req.Batch = batch;
  req.NoWait = true;
  natsStatus s = natsSubscription_FetchRequest(&list, pull_, &req);
  if (s != NATS_OK || list.Count == 0) {
    natsMsgList_Destroy(&list);
    list = natsMsgList{nullptr, 0};
    jsFetchRequest_Init(&req);
    req.Batch = 1;
    req.Expires = static_cast<int64_t>(timeout_ms) * 1000000;  // ns
    s = natsSubscription_FetchRequest(&list, pull_, &req);
  }
  if (s == NATS_TIMEOUT || s == NATS_NOT_FOUND) return out;
  nats_check(s, "fetch vault events");
  for (int i = 0; i < list.Count; ++i) {
    natsMsg* m = list.Msgs[i];
    list.Msgs[i] = nullptr;  // ownership moves to JsMessage
    jsMsgMetaData* meta = nullptr;
    std::uint64_t seq = 0, pending = 0;
    if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
      seq = meta->Sequence.Stream;
      pending = meta->NumPending;
      jsMsgMetaData_Destroy(meta);
    }
    out.push_back(JsMessage{m, seq, pending});
  }
  natsMsgList_Destroy(&list);
  return out;
}

void NatsClient::ack(const JsMessage& m) { nats_check(natsMsg_Ack(m.msg, nullptr), "ack"); }
void NatsClient::term(const JsMessage& m) { nats_check(natsMsg_Term(m.msg, nullptr), "term"); }
void NatsClient::free(std::vector<JsMessage>& msgs) {
  for (auto& m : msgs) natsMsg_Destroy(m.msg);
  msgs.clear();
}

}  // namespace vaultrisk::service
