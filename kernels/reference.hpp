// A plain sequential implementation of SPEC §3-4, written straight from the text
// (MtM(j) - MtM, maps, no layout): the oracle the backends are tested against.
#pragma once

#include <vector>

#include "kernels/book.hpp"
#include "kernels/engine.hpp"
#include "kernels/market.hpp"
#include "kernels/methodology.hpp"

namespace vaultrisk::reference {

struct Result {
  InstrumentTable instruments;  // file order
  BlockResults blocks;          // account (file order), then underlying name
  AccountTable accounts;        // file order
  std::vector<std::vector<double>> block_pnl;  // per block: PnL_j
};

// Throws input_error for the same inputs the engine rejects.
Result revalue(const Book& book, const Market& market, const Methodology& methodology);

}  // namespace vaultrisk::reference
