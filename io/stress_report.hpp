// The outputs of `vaultrisk stress` (SPEC §8): scenarios.csv, accounts.csv,
// summary.json and report.html (self-contained: inline SVG charts drawn here, no
// script, no network). Each file is written atomically.
#pragma once

#include <filesystem>
#include <string>

#include "kernels/book.hpp"
#include "kernels/stress.hpp"

namespace vaultrisk::io {

struct StressRunInfo {
  std::string source;  // "named", "history", "history (filtered)", "monte-carlo"
  std::string inputs;  // what was run, for the report's header
  double confidence = 0.99;
  double horizon_days = 0;
  std::uint64_t seed = 0;  // Monte Carlo only
};

std::string stress_summary_json(const StressResult& r, const StressRunInfo& info);
std::string stress_report_html(const Book& book, const StressSpec& spec, const StressResult& r, const StressRunInfo& info);
void write_stress_outputs(const std::filesystem::path& dir, const Book& book, const StressSpec& spec,
                          const StressResult& r, const StressRunInfo& info);

}  // namespace vaultrisk::io
