// Shared by the libFuzzer targets: the contract every reader of untrusted bytes
// keeps is "a value, or an input_error naming where the input is wrong". Any other
// exception escaping a target is a finding (libFuzzer reports it as a crash), and
// so is any sanitizer report.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace vaultrisk::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A property the target checks on what it accepted; abort() makes libFuzzer keep
// the input as a crash artefact.
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz property violated: %s\n", what);
    std::abort();
  }
}

// Splits `text` at the first `n - 1` NUL bytes into `n` parts (missing parts empty).
template <std::size_t N>
inline void split(std::string_view text, std::string_view (&parts)[N]) {
  for (std::size_t i = 0; i < N; ++i) {
    const std::size_t cut = i + 1 < N ? text.find('\0') : std::string_view::npos;
    parts[i] = text.substr(0, cut);
    text = cut == std::string_view::npos ? std::string_view{} : text.substr(cut + 1);
  }
}

// Runs `fn`; the errors it may raise on bad input are expected and swallowed.
template <class Fn>
inline void expect_input_errors(Fn&& fn) {
  try {
    fn();
  } catch (const input_error&) {
  }
}

}  // namespace vaultrisk::fuzz
