// Oracle ticks (SPEC §6): subject, body and signature header as they come off NATS.
// Input: subject NUL body NUL signature-header.
#include "feeds/oracle_tick.hpp"
#include "tests/fuzz/fuzz_common.hpp"

#include "core/limits.hpp"

using namespace vaultrisk;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view parts[3];
  fuzz::split(fuzz::as_text(data, size), parts);
  const std::string_view subject = parts[0], body = parts[1], signature = parts[2];

  static const feeds::TickValidator validator(feeds::TickValidatorConfig{});
  const auto verdict = validator.check(subject, body, signature.empty() ? std::nullopt : std::optional(signature),
                                       1'700'000'000'000);
  if (const auto* rejection = std::get_if<feeds::TickRejection>(&verdict))
    fuzz::require(!rejection->reason.empty() && !rejection->detail.empty(), "a rejection has a reason and a detail");
  else
    fuzz::require(false, "a tick from no configured signer was accepted");

  fuzz::expect_input_errors([&] {
    const feeds::OracleTick tick = feeds::decode_tick(body);
    // Whatever decodes lies inside the numeric domain (core/limits.hpp).
    const auto& m = tick.market;
    fuzz::require(m.spot >= limits::kMinPrice && m.spot <= limits::kMaxPrice, "spot in its domain");
    fuzz::require(std::fabs(m.rate) <= limits::kMaxAbsRate, "rate in its domain");
    fuzz::require(tick.body == body, "the signed bytes are kept exactly");
  });
  return 0;
}
