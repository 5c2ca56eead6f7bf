// Market snapshot files (SPEC §2) and their JSON pieces, shared with oracle ticks.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "io/json_fields.hpp"
#include "kernels/market.hpp"

namespace vaultrisk::io {

Market load_market(const std::filesystem::path& path);
Market parse_market(std::string_view text, const std::string& source);

// The `expiries` array of an underlying; `path` names it in errors.
std::vector<ExpirySlice> parse_expiries(const json& j, const std::string& path);

std::string market_to_json(const Market& m);

}  // namespace vaultrisk::io
