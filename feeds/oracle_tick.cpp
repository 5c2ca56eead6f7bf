// Tick decoding and validation.
#include "feeds/oracle_tick.hpp"

#include <cmath>

#include "chain/keccak.hpp"
#include "chain/secp256k1.hpp"
#include "core/error.hpp"
#include "core/limits.hpp"
#include "io/csv_reader.hpp"
#include "io/json_fields.hpp"
#include "io/market_json.hpp"

namespace vaultrisk::feeds {

namespace {
constexpr std::string_view kSubjectPrefix = "oracle.tick.";
}

OracleTick decode_tick(std::string_view body) {
  const io::json j = io::parse_json(body, "tick");
  io::require_object(j, "tick", {"underlying", "seq", "time_ms", "spot", "rate", "confidence", "expiries"});
  OracleTick t;
  if (!j.contains("underlying") || !j["underlying"].is_string()) throw input_error("tick.underlying: missing or not a string");
  t.underlying = j["underlying"].get<std::string>();
  if (!io::valid_token(t.underlying, 32, false)) throw input_error("tick.underlying: must match [A-Za-z0-9_-]{1,32}");
  if (!j.contains("seq") || !j["seq"].is_number_unsigned()) throw input_error("tick.seq: missing or not an unsigned integer");
  t.seq = j["seq"].get<std::uint64_t>();
  if (!j.contains("time_ms") || !j["time_ms"].is_number_integer()) throw input_error("tick.time_ms: missing or not an integer");
  t.time_ms = j["time_ms"].get<std::int64_t>();
  t.market.spot = io::require_number(j, "spot", "tick");
  t.market.rate = io::number_or(j, "rate", 0.0, "tick");
  t.market.confidence = io::number_or(j, "confidence", 1.0, "tick");
  t.market.time = static_cast<double>(t.time_ms) / 1000.0;
  if (j.contains("expiries")) t.market.expiries = io::parse_expiries(j["expiries"], "tick.expiries");
  validate_underlying_market(t.market, "tick");
  t.body.assign(body);
  t.body_hash = chain::keccak256(body);
  return t;
}

std::variant<OracleTick, TickRejection> TickValidator::check(std::string_view subject, std::string_view body,
                                                             std::optional<std::string_view> signature_header,
                                                             std::int64_t now_ms) const {
  if (subject.substr(0, kSubjectPrefix.size()) != kSubjectPrefix)
    return TickRejection{"bad_subject", "expected oracle.tick.<UNDERLYING>"};
  const std::string_view subject_und = subject.substr(kSubjectPrefix.size());
  if (body.size() > limits::kMaxTickBytes)
    return TickRejection{"too_large", "body is " + std::to_string(body.size()) + " bytes (max " +
                                          std::to_string(limits::kMaxTickBytes) + ")"};
  OracleTick t;
  try {
    t = decode_tick(body);
  } catch (const out_of_range_error& e) {
    return TickRejection{"out_of_range", e.what()};
  } catch (const input_error& e) {
    const std::string what = e.what();
    const bool numbers = what.find("must be") != std::string::npos || what.find("finite") != std::string::npos;
    return TickRejection{numbers ? "invalid_market" : "malformed", what};
  }
  if (t.underlying != subject_und)
    return TickRejection{"subject_mismatch", "body underlying '" + t.underlying + "' on subject " + std::string(subject)};
  if (!signature_header) return TickRejection{"missing_signature", "no Vaultrisk-Signature header"};
  const auto sig = chain::signature_from_hex(*signature_header);
  if (!sig) return TickRejection{"bad_signature", "Vaultrisk-Signature is not 65 bytes of 0x-hex"};
  const auto signer = chain::recover_address(chain::personal_message_hash(body), *sig);
  if (!signer) return TickRejection{"bad_signature", "signature does not recover (malformed or high-s)"};
  if (!config_.signers.count(*signer))
    return TickRejection{"unknown_signer", "signed by " + chain::to_hex(*signer) + ", not a configured oracle"};
  t.signer = *signer;
  if (auto it = last_seq_.find(t.underlying); it != last_seq_.end() && t.seq <= it->second)
    return TickRejection{"replayed", "seq " + std::to_string(t.seq) + " <= last accepted " + std::to_string(it->second)};
  if (now_ms - t.time_ms > config_.max_age_ms)
    return TickRejection{"stale", "time_ms is " + std::to_string(now_ms - t.time_ms) + " ms old (max " +
                                      std::to_string(config_.max_age_ms) + ")"};
  if (t.time_ms - now_ms > config_.max_future_ms)
    return TickRejection{"future", "time_ms is " + std::to_string(t.time_ms - now_ms) + " ms ahead of this clock"};
  return t;
}

std::string sign_tick_body(const std::string& private_key_hex, std::string_view body) {
  return chain::to_hex(chain::Signer(private_key_hex).sign(chain::personal_message_hash(body)));
}

}  // namespace vaultrisk::feeds
