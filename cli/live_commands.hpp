// Live commands of the CLI (service and oracle simulator).
#pragma once

#include <string>
#include <vector>

#include "cli/args.hpp"

namespace vaultrisk::cli {

int cmd_serve(const std::vector<std::string>& args);
int cmd_oracle_sim(const std::vector<std::string>& args);

}  // namespace vaultrisk::cli
