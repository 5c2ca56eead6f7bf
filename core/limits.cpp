// Range checks of the numeric domain.
#include "core/limits.hpp"

#include <charconv>

namespace vaultrisk::limits {

namespace {
std::string shortest(double x) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}
}  // namespace

void require_range(double x, double lo, double hi, const std::string& where) {
  if (std::isfinite(x) && x >= lo && x <= hi) return;
  throw out_of_range_error(where + ": " + shortest(x) + " is outside [" + shortest(lo) + ", " + shortest(hi) + "]");
}

bool valid_event_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxEventIdBytes) return false;
  for (unsigned char c : id)
    if (c < 0x21 || c > 0x7e) return false;
  return true;
}

}  // namespace vaultrisk::limits
