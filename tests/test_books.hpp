// Random books, markets and methodologies for engine tests (no tuning to the engine).
#pragma once

#include <cstdint>

#include "kernels/book.hpp"
#include "kernels/market.hpp"
#include "kernels/methodology.hpp"

namespace vaultrisk::books {

struct Case {
  Book book;
  Market market;
  Methodology methodology;
};

// Three underlyings (one low-confidence, one with its own smaller scenario grid),
// perps and options over expired, sub-day and long expiries, random SVI smiles.
Case random_case(std::uint64_t seed, int accounts);

// `m` with one underlying's spot, rate and smile moved, and its time advanced.
UnderlyingMarket moved(const UnderlyingMarket& m, std::uint64_t seed);

}  // namespace vaultrisk::books
