// Request bodies of the query endpoints (risk.api.account, risk.api.proof): one
// strict reading of them, shared, so that "1abc" or "-1" is a 400, never account 1
// or 18446744073709551615.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace vaultrisk::service {

// The request's JSON object; throws input_error (a 400) when the body is larger
// than limits::kMaxRequestBytes, is not JSON, or is not an object.
nlohmann::json parse_request(std::string_view body, const char* shape);

// Field `name` as an unsigned 64-bit integer: a JSON non-negative integer, or a
// string of 1..20 decimal digits that fits (ids beyond 2^53). Nullopt when absent;
// input_error for anything else (signs, fractions, spaces, trailing characters).
std::optional<std::uint64_t> uint64_field(const nlohmann::json& request, const char* name);

}  // namespace vaultrisk::service
