// Args implementation.
#include "cli/args.hpp"

#include <charconv>

namespace vaultrisk::cli {

Args::Args(const std::vector<std::string>& argv, const std::set<std::string>& options,
           const std::set<std::string>& flags) {
  for (std::size_t k = 0; k < argv.size(); ++k) {
    std::string a = argv[k];
    if (a.rfind("--", 0) != 0) throw usage_error("unexpected argument '" + a + "'");
    a = a.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = a.find('='); eq != std::string::npos) {
      inline_value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    if (flags.count(a)) {
      if (inline_value) throw usage_error("--" + a + " takes no value");
      flags_.insert(a);
    } else if (options.count(a)) {
      if (inline_value) {
        values_[a] = *inline_value;
      } else {
        if (k + 1 >= argv.size()) throw usage_error("--" + a + " needs a value");
        values_[a] = argv[++k];
      }
    } else {
      throw usage_error("unknown option --" + a);
    }
  }
}

std::optional<std::string> Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::require(const std::string& name) const {
  auto v = get(name);
  if (!v) throw usage_error("--" + name + " is required");
  return *v;
}

std::string Args::get_or(const std::string& name, const std::string& fallback) const {
  return get(name).value_or(fallback);
}

std::uint64_t Args::uint(const std::string& name, std::uint64_t fallback, bool required) const {
  auto v = get(name);
  if (!v) {
    if (required) throw usage_error("--" + name + " is required");
    return fallback;
  }
  std::uint64_t x = 0;
  const auto r = std::from_chars(v->data(), v->data() + v->size(), x);
  if (v->empty() || r.ec != std::errc() || r.ptr != v->data() + v->size())
    throw usage_error("--" + name + ": expected a non-negative integer, got '" + *v + "'");
  return x;
}

}  // namespace vaultrisk::cli
