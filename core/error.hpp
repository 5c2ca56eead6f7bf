// Exception hierarchy and precondition macros shared by every layer.
#pragma once

#include <stdexcept>
#include <string>

namespace vaultrisk {

// Base of every error vaultrisk raises on purpose.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad user input: a file, a field, a message. The text names where it is.
class input_error : public error {
 public:
  using error::error;
};

// Input that parses but lies outside its documented numeric domain (core/limits.hpp).
class out_of_range_error : public input_error {
 public:
  using input_error::input_error;
};

// A requested feature or device is not available in this build / on this host.
class unavailable_error : public error {
 public:
  using error::error;
};

// A CUDA runtime call failed.
class cuda_error : public error {
 public:
  using error::error;
};

// Broken internal invariant: a bug, never a user mistake.
class logic_error : public error {
 public:
  using error::error;
};

namespace detail {
[[noreturn]] inline void throw_logic(const char* cond, const char* file, int line,
                                     const std::string& msg) {
  throw logic_error(std::string(file) + ":" + std::to_string(line) + ": expected " + cond +
                    (msg.empty() ? "" : ": " + msg));
}
}  // namespace detail

}  // namespace vaultrisk

// Internal precondition: throws logic_error with file and line when violated.
#define VR_EXPECTS(cond, msg)                                                   \
  do {                                                                          \
    if (!(cond)) ::vaultrisk::detail::throw_logic(#cond, __FILE__, __LINE__, msg); \
  } while (0)
