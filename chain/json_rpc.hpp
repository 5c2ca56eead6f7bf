// Ethereum JSON-RPC over HTTP (libcurl): timeouts on every request, retries with
// backoff on transport failures, and the few eth_* calls a poster needs.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chain/bytes.hpp"
#include "core/error.hpp"

namespace vaultrisk::chain {

// The node answered with a JSON-RPC error (a revert, a bad parameter): retrying
// will not help. `data` holds revert data when the node gave it.
class rpc_error : public error {
 public:
  rpc_error(const std::string& what, long code, Bytes data) : error(what), code(code), data(std::move(data)) {}
  long code;
  Bytes data;
};

struct RpcOptions {
  int timeout_ms = 5000;  // per HTTP request
  int retries = 2;        // further attempts after a transport failure
  int backoff_ms = 200;   // doubled per retry
};

class JsonRpcClient {
 public:
  // Throws input_error for a URL that is not http(s).
  explicit JsonRpcClient(std::string url, RpcOptions options = {});
  ~JsonRpcClient();
  JsonRpcClient(const JsonRpcClient&) = delete;
  JsonRpcClient& operator=(const JsonRpcClient&) = delete;

  // The `result` of a call. Throws unavailable_error when the node cannot be reached
  // (after the retries), rpc_error when it answers with an error.
  nlohmann::json call(const std::string& method, const nlohmann::json& params);
  const std::string& url() const { return url_; }

  std::uint64_t chain_id();
  std::uint64_t transaction_count(const Address& a, const std::string& block = "pending");
  std::uint64_t base_fee();  // of the latest block
  std::uint64_t max_priority_fee();
  std::uint64_t estimate_gas(const Address& from, const std::optional<Address>& to, const Bytes& data);
  Bytes eth_call(const Address& to, const Bytes& data);
  Hash32 send_raw_transaction(const Bytes& raw);
  // Null when not mined yet.
  nlohmann::json receipt(const Hash32& tx_hash);

 private:
  std::string post(const std::string& body);
  std::string url_;
  RpcOptions options_;
  void* curl_ = nullptr;  // CURL*
  std::uint64_t next_id_ = 1;
  std::optional<std::uint64_t> chain_id_;
};

// The `result` of a JSON-RPC answer body; rpc_error for an error answer or for
// anything that is not a JSON-RPC answer (never another exception type).
nlohmann::json rpc_result(const std::string& method, std::string_view text);

// "0x1a" -> 26; throws input_error naming `what`.
std::uint64_t quantity(const nlohmann::json& v, const char* what);
std::string to_quantity(std::uint64_t x);

}  // namespace vaultrisk::chain
