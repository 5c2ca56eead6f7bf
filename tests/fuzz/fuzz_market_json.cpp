// Market snapshot files (SPEC §2). Property: a market that loads survives a write and a load unchanged.
#include "io/market_json.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace vaultrisk;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::expect_input_errors([&] {
    const Market m = io::parse_market(fuzz::as_text(data, size), "fuzz.json");
    const std::string once = io::market_to_json(m);
    fuzz::require(io::market_to_json(io::parse_market(once, "again.json")) == once, "write(load(write(m))) == write(m)");
  });
  return 0;
}
