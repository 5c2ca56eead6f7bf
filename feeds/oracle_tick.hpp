// Oracle ticks (SPEC §6): decoding and validation of signed market updates.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>

#include "chain/bytes.hpp"
#include "kernels/market.hpp"

namespace vaultrisk::feeds {

struct OracleTick {
  std::string underlying;
  std::uint64_t seq = 0;
  std::int64_t time_ms = 0;
  UnderlyingMarket market;  // time = time_ms / 1000
  std::string body;         // the exact signed bytes
  chain::Hash32 body_hash{};  // keccak256(body), for the market digest of intents
  chain::Address signer{};
};

struct TickRejection {
  std::string reason;  // short machine code: bad_signature, unknown_signer, stale, ...
  std::string detail;  // human explanation
};

struct TickValidatorConfig {
  std::set<chain::Address> signers;
  std::int64_t max_age_ms = 10000;     // older than this (by the tick's time_ms) is stale
  std::int64_t max_future_ms = 2000;   // clock skew allowed ahead of us
};

// Checks, in order: subject, size, JSON shape and numbers (the numeric domain of
// core/limits.hpp: out_of_range), signature and signer,
// sequence, age. Stateless except for the last accepted seq per underlying,
// which only accept() changes.
class TickValidator {
 public:
  explicit TickValidator(TickValidatorConfig config) : config_(std::move(config)) {}

  std::variant<OracleTick, TickRejection> check(std::string_view subject, std::string_view body,
                                                std::optional<std::string_view> signature_header,
                                                std::int64_t now_ms) const;
  void accept(const OracleTick& tick) { last_seq_[tick.underlying] = tick.seq; }
  void restore(const std::string& underlying, std::uint64_t seq) { last_seq_[underlying] = seq; }
  const std::map<std::string, std::uint64_t>& last_seq() const { return last_seq_; }

 private:
  TickValidatorConfig config_;
  std::map<std::string, std::uint64_t> last_seq_;
};

// Decodes a tick body without checking signature, sequence or age (also used to
// restore persisted ticks). Throws input_error naming the field.
OracleTick decode_tick(std::string_view body);

// Signs a tick body as an oracle would: returns the header value (0x r||s||v).
std::string sign_tick_body(const std::string& private_key_hex, std::string_view body);

}  // namespace vaultrisk::feeds
