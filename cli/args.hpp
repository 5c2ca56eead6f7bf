// Minimal strict command-line parsing: --key value, --key=value and bare flags.
#pragma once

#include <map>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <set>
#include <string>
#include <vector>

namespace vaultrisk::cli {

class usage_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  // `options` take a value, `flags` do not; anything else is a usage error.
  Args(const std::vector<std::string>& argv, const std::set<std::string>& options,
       const std::set<std::string>& flags);
  bool flag(const std::string& name) const { return flags_.count(name) > 0; }
  std::optional<std::string> get(const std::string& name) const;
  std::string require(const std::string& name) const;
  std::string get_or(const std::string& name, const std::string& fallback) const;
  std::uint64_t uint(const std::string& name, std::uint64_t fallback, bool required = false) const;

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
};

}  // namespace vaultrisk::cli
