// Query bodies of risk.api.account and risk.api.proof. Property: an id that is
// accepted is exactly the number the request wrote, in decimal.
#include <cctype>

#include "service/api_request.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace vaultrisk;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::expect_input_errors([&] {
    const nlohmann::json request = service::parse_request(fuzz::as_text(data, size), "{\"account\": <id>}");
    for (const char* name : {"account", "epoch"}) {
      const auto id = service::uint64_field(request, name);
      if (!id) continue;
      const auto& field = request.at(name);
      if (field.is_string()) {
        std::string digits = field.get<std::string>();
        digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size() - 1));
        fuzz::require(digits == std::to_string(*id), "a string id is read as exactly its digits");
      } else {
        fuzz::require(field.is_number_unsigned() || field.is_number_integer(), "a numeric id is a JSON integer");
      }
    }
  });
  return 0;
}
