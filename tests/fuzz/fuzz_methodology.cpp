// Methodology config files (SPEC §4). Property: a config that loads survives a write and a load unchanged.
#include "io/methodology_json.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace vaultrisk;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::expect_input_errors([&] {
    const Methodology m = io::parse_methodology(fuzz::as_text(data, size), "fuzz.json");
    const std::string once = io::methodology_to_json(m);
    fuzz::require(io::methodology_to_json(io::parse_methodology(once, "again.json")) == once,
                  "write(load(write(m))) == write(m)");
  });
  return 0;
}
