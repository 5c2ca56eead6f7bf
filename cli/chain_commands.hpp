// On-chain commands of the CLI: deploy the anchor contract, prove an account,
// check a published epoch and an intent against the chain.
#pragma once

#include <string>
#include <vector>

namespace vaultrisk::cli {

int cmd_deploy_anchor(const std::vector<std::string>& args);
int cmd_proof(const std::vector<std::string>& args);
int cmd_verify_epoch(const std::vector<std::string>& args);
int cmd_verify_intent(const std::vector<std::string>& args);

}  // namespace vaultrisk::cli
