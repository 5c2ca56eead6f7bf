// An Ethereum node's JSON-RPC answers, as the anchorer reads them: the result, or an
// rpc_error; and hex quantities within it.
#include "chain/json_rpc.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace vaultrisk;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const nlohmann::json result = chain::rpc_result("eth_getTransactionCount", fuzz::as_text(data, size));
    fuzz::expect_input_errors([&] {
      const std::uint64_t n = chain::quantity(result, "result");
      fuzz::require(chain::quantity(chain::to_quantity(n), "again") == n, "quantity(to_quantity(n)) == n");
    });
  } catch (const chain::rpc_error& e) {
    fuzz::require(e.what()[0] != '\0', "an rpc_error says what went wrong");
  }
  return 0;
}
