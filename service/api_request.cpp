// Strict request parsing for the query endpoints.
#include "service/api_request.hpp"

#include <charconv>
#include <string>

#include "core/error.hpp"
#include "core/limits.hpp"

namespace vaultrisk::service {

nlohmann::json parse_request(std::string_view body, const char* shape) {
  if (body.size() > limits::kMaxRequestBytes)
    throw input_error("request body is " + std::to_string(body.size()) + " bytes (max " +
                      std::to_string(limits::kMaxRequestBytes) + ")");
  nlohmann::json j = nlohmann::json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw input_error(std::string("request body must be JSON: ") + shape);
  return j;
}

std::optional<std::uint64_t> uint64_field(const nlohmann::json& request, const char* name) {
  const auto it = request.find(name);
  if (it == request.end()) return std::nullopt;
  const std::string bad = std::string(name) + " must be an unsigned 64-bit integer";
  if (it->is_number_unsigned()) return it->get<std::uint64_t>();
  if (it->is_number_integer() && it->get<std::int64_t>() >= 0) return static_cast<std::uint64_t>(it->get<std::int64_t>());
  if (!it->is_string()) throw input_error(bad);
  const std::string& s = it->get_ref<const std::string&>();
  std::uint64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  // from_chars takes no sign or space, and reports overflow; the whole string must be digits.
  if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size()) throw input_error(bad);
  return v;
}

}  // namespace vaultrisk::service
