// JSON-RPC over libcurl.
#include "chain/json_rpc.hpp"

#include <curl/curl.h>

#include <mutex>
#include <thread>

namespace vaultrisk::chain {

namespace {

using json = nlohmann::json;

std::size_t on_body(char* p, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

std::uint64_t quantity(const json& v, const char* what) {
  if (!v.is_string()) throw input_error(std::string(what) + ": expected a hex quantity, got " + v.dump(-1, ' ', false, json::error_handler_t::replace));
  const std::string s = v.get<std::string>();
  if (s.size() < 3 || s.size() > 18 || s[0] != '0' || s[1] != 'x')
    throw input_error(std::string(what) + ": '" + s + "' is not a hex quantity that fits 64 bits");
  Bytes be;
  try {
    be = from_hex((s.size() % 2 ? "0" : "") + s.substr(2));  // quantities drop leading zeros: pad to whole bytes
  } catch (const input_error&) {
    throw input_error(std::string(what) + ": '" + s + "' is not hex");
  }
  std::uint64_t x = 0;
  for (std::uint8_t b : be) x = x << 8 | b;
  return x;
}

std::string to_quantity(std::uint64_t x) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(x));
  return buf;
}

JsonRpcClient::JsonRpcClient(std::string url, RpcOptions options) : url_(std::move(url)), options_(options) {
  if (url_.rfind("http://", 0) != 0 && url_.rfind("https://", 0) != 0)
    throw input_error("--rpc: '" + url_ + "' is not an http(s) URL");
  global_init();
  curl_ = curl_easy_init();
  if (!curl_) throw unavailable_error("libcurl: cannot create a handle");
}

JsonRpcClient::~JsonRpcClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

std::string JsonRpcClient::post(const std::string& body) {
  CURL* c = static_cast<CURL*>(curl_);
  std::string last_error;
  for (int attempt = 0; attempt <= options_.retries; ++attempt) {
    if (attempt) std::this_thread::sleep_for(std::chrono::milliseconds(options_.backoff_ms << (attempt - 1)));
    std::string out;
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_ms));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.timeout_ms));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    const CURLcode rc = curl_easy_perform(c);
    long http = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
      last_error = curl_easy_strerror(rc);
    } else if (http >= 500 || http == 429) {
      last_error = "HTTP " + std::to_string(http);
    } else if (http != 200) {
      throw rpc_error("JSON-RPC " + url_ + ": HTTP " + std::to_string(http) + ": " + out.substr(0, 200), http, {});
    } else {
      return out;
    }
  }
  throw unavailable_error("JSON-RPC " + url_ + ": " + last_error + " (after " + std::to_string(options_.retries + 1) +
                          " attempts)");
}

json JsonRpcClient::call(const std::string& method, const json& params) {
  const json req = {{"jsonrpc", "2.0"}, {"id", next_id_++}, {"method", method}, {"params", params}};
  return rpc_result(method, post(req.dump()));
}

json rpc_result(const std::string& method, std::string_view text) {
  const auto excerpt = [&] { return std::string(text.substr(0, 200)); };
  json res;
  try {
    res = json::parse(text);
  } catch (const std::exception&) {
    throw rpc_error(method + ": the node's answer is not JSON: " + excerpt(), 0, {});
  }
  if (!res.is_object()) throw rpc_error(method + ": the node's answer is not a JSON object: " + excerpt(), 0, {});
  if (res.contains("error") && !res["error"].is_null()) {
    const json& e = res["error"];
    if (!e.is_object()) throw rpc_error(method + ": " + e.dump(-1, ' ', false, json::error_handler_t::replace), 0, {});
    Bytes data;
    if (e.contains("data") && e["data"].is_string()) {
      try {
        data = from_hex(e["data"].get<std::string>());
      } catch (const input_error&) {
      }
    }
    const json& msg = e.contains("message") ? e["message"] : e;
    const long code = e.contains("code") && e["code"].is_number_integer() ? e["code"].get<long>() : 0L;
    throw rpc_error(method + ": " + (msg.is_string() ? msg.get<std::string>() : msg.dump(-1, ' ', false, json::error_handler_t::replace)),
                    code, std::move(data));
  }
  if (!res.contains("result")) throw rpc_error(method + ": answer without a result: " + excerpt(), 0, {});
  return res["result"];
}

std::uint64_t JsonRpcClient::chain_id() {
  if (!chain_id_) chain_id_ = quantity(call("eth_chainId", json::array()), "eth_chainId");
  return *chain_id_;
}

std::uint64_t JsonRpcClient::transaction_count(const Address& a, const std::string& block) {
  return quantity(call("eth_getTransactionCount", json::array({to_hex(a), block})), "eth_getTransactionCount");
}

std::uint64_t JsonRpcClient::base_fee() {
  const json b = call("eth_getBlockByNumber", json::array({"latest", false}));
  if (!b.is_object() || !b.contains("baseFeePerGas")) return 0;  // pre-London chain
  return quantity(b["baseFeePerGas"], "baseFeePerGas");
}

std::uint64_t JsonRpcClient::max_priority_fee() {
  try {
    return quantity(call("eth_maxPriorityFeePerGas", json::array()), "eth_maxPriorityFeePerGas");
  } catch (const rpc_error&) {
    return 1'000'000'000;  // 1 gwei where the node does not offer an estimate
  }
}

std::uint64_t JsonRpcClient::estimate_gas(const Address& from, const std::optional<Address>& to, const Bytes& data) {
  json tx = {{"from", to_hex(from)}, {"data", to_hex(data)}};
  if (to) tx["to"] = to_hex(*to);
  return quantity(call("eth_estimateGas", json::array({tx})), "eth_estimateGas");
}

Bytes JsonRpcClient::eth_call(const Address& to, const Bytes& data) {
  const json r = call("eth_call", json::array({json{{"to", to_hex(to)}, {"data", to_hex(data)}}, "latest"}));
  return from_hex(r.get<std::string>());
}

Hash32 JsonRpcClient::send_raw_transaction(const Bytes& raw) {
  return hash_from_hex(call("eth_sendRawTransaction", json::array({to_hex(raw)})).get<std::string>());
}

json JsonRpcClient::receipt(const Hash32& tx_hash) { return call("eth_getTransactionReceipt", json::array({to_hex(tx_hash)})); }

}  // namespace vaultrisk::chain
