// `vaultrisk stress` (SPEC §8).
#pragma once

#include <string>
#include <vector>

namespace vaultrisk::cli {
int cmd_stress(const std::vector<std::string>& args);
int cmd_stress_worker(const std::vector<std::string>& args);
}  // namespace vaultrisk::cli
