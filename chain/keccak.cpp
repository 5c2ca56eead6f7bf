// Keccak-256 through Crypto++.
#include "chain/keccak.hpp"

#include <cryptopp/keccak.h>

#include <string>

namespace vaultrisk::chain {

Hash32 keccak256(const std::uint8_t* data, std::size_t n) {
  CryptoPP::Keccak_256 h;
  h.Update(data, n);
  Hash32 out{};
  h.Final(out.data());
  return out;
}

Hash32 personal_message_hash(std::string_view message) {
  std::string m = "\x19" "Ethereum Signed Message:\n" + std::to_string(message.size());
  m.append(message);
  return keccak256(m);
}

}  // namespace vaultrisk::chain
