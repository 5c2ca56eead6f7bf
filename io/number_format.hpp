// Shortest round-trip formatting of numbers for every file vaultrisk writes.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>

namespace vaultrisk::io {

// Appends the shortest decimal form that reads back to exactly `x` (std::to_chars).
inline void append_number(std::string& s, double x) {
  char buf[32];
  if (x == 0.0) x = 0.0;  // no "-0"
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  s.append(buf, r.ptr);
}

inline void append_number(std::string& s, std::uint64_t x) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  s.append(buf, r.ptr);
}

inline void append_number(std::string& s, std::int64_t x) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  s.append(buf, r.ptr);
}

}  // namespace vaultrisk::io
