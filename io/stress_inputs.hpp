// SPEC §8's scenario inputs: named scenario files, price history CSVs and the Monte
// Carlo model. Every error names the file and the JSON path or line and field.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/stress.hpp"

namespace vaultrisk::io {

// Numeric domain of scenario inputs (docs/stress.md).
inline constexpr double kMaxSpotMultiplier = 100.0;  // s in (0, 100]
inline constexpr double kMaxVolShift = 5.0;          // |dv| <= 5 (500 vol points)
inline constexpr double kMaxHorizonDays = 3650.0;
inline constexpr std::int64_t kMaxPaths = 100'000'000;

struct NamedScenarios {
  double horizon_days = 0.0;
  ScenarioTable table;
};

// {"horizon_days": H, "scenarios": [{"name", "shocks": {U: {"spot", "vol"}}}]} over
// the book's `underlyings` (an underlying not in the book is an error).
NamedScenarios parse_named_scenarios(std::string_view text, const std::string& source,
                                     const std::vector<std::string>& underlyings);
NamedScenarios load_named_scenarios(const std::filesystem::path& path, const std::vector<std::string>& underlyings);

// `date,underlying,spot,atm_vol` rows; scenarios for every t with t + H present.
// `filtered`: spot moves rescaled to today's ATM vol `sigma` (per underlying).
ScenarioTable parse_history(std::string_view text, const std::string& source, const std::vector<std::string>& underlyings,
                            std::int64_t horizon_rows, bool filtered, const std::vector<double>& sigma);
ScenarioTable load_history(const std::filesystem::path& path, const std::vector<std::string>& underlyings,
                           std::int64_t horizon_rows, bool filtered, const std::vector<double>& sigma);

// The Monte Carlo model file (every field optional) over the book's underlyings;
// `default_sigma` is today's ATM vol per underlying, used where the model names none
// (NaN where the market had none: then the model must give one).
MonteCarloSpec parse_mc_model(std::string_view text, const std::string& source,
                              const std::vector<std::string>& underlyings, const std::vector<double>& default_sigma);

}  // namespace vaultrisk::io
