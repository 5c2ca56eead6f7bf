// Methodology configuration files: SPEC §4 defaults, overridable globally and per underlying.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "kernels/methodology.hpp"

namespace vaultrisk::io {

Methodology load_methodology(const std::filesystem::path& path);
Methodology parse_methodology(std::string_view text, const std::string& source);
// The defaults as a complete, commented-by-structure config (`vaultrisk config`).
std::string methodology_to_json(const Methodology& m);

}  // namespace vaultrisk::io
