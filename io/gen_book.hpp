// Deterministic synthetic books and markets (`vaultrisk gen-book`).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>

namespace vaultrisk::io {

struct GenBookOptions {
  std::uint64_t accounts = 1000;
  int underlyings = 3;
  std::uint64_t seed = 1;
  std::int64_t time = 1767225600;  // market time and expiry anchor (unix seconds)
  // ~accounts/10 instruments, ~10 positions per account (1..19).
};

struct GenBookSummary {
  std::uint64_t instruments = 0, accounts = 0, positions = 0;
};

// Writes instruments.csv, accounts.csv, positions.csv and market.json into `dir`.
// Same options, same bytes. `progress(done, total)` is called as positions are written.
GenBookSummary gen_book(const GenBookOptions& opt, const std::filesystem::path& dir,
                        const std::function<void(std::uint64_t, std::uint64_t)>& progress = {});

}  // namespace vaultrisk::io
