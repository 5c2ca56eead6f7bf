// Partitions of the accounts (SPEC §9): nats-server's deterministic subject
// partitioning, `partition(P, account)`, is FNV-1a (32 bits) of the account token's
// bytes modulo P. The server's mapping (deploy/nats/) appends it to every account
// event's subject; the service computes the same function to route queries.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vaultrisk::service {

inline std::uint32_t partition_of_token(std::string_view token, std::uint32_t partitions) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : token) h = (h ^ c) * 16777619u;
  return h % partitions;
}

inline std::uint32_t partition_of(std::uint64_t account, std::uint32_t partitions) {
  return partition_of_token(std::to_string(account), partitions);
}

// What an event subject says about its partition:
//   vault.event.instrument.<underlying>   -> every partition (nullopt);
//   vault.event.<type>.<account>          -> partition_of(<account> as written);
//   vault.event.<type>.<account>.<p>      -> p, which must equal partition_of(<account>)
//                                            (else: `bad` is set).
struct SubjectPartition {
  std::optional<std::uint32_t> partition;  // nullopt: a listing, for every partition
  bool bad = false;                        // malformed, or the server's partition disagrees
};

inline SubjectPartition subject_partition(std::string_view subject, std::uint32_t partitions) {
  constexpr std::string_view prefix = "vault.event.";
  SubjectPartition r;
  if (subject.substr(0, prefix.size()) != prefix) return {std::nullopt, true};
  std::string_view rest = subject.substr(prefix.size());
  const auto dot = rest.find('.');
  if (dot == std::string_view::npos) return {std::nullopt, true};
  if (rest.substr(0, dot) == "instrument") return r;
  rest = rest.substr(dot + 1);
  const auto pdot = rest.find('.');
  const std::string_view account = rest.substr(0, pdot);
  // "0123" and "123" are one account but hash apart: only the canonical form is accepted.
  if (account.empty() || (account.size() > 1 && account[0] == '0')) return {std::nullopt, true};
  const std::uint32_t computed = partition_of_token(account, partitions);
  if (pdot != std::string_view::npos) {
    const std::string_view ptok = rest.substr(pdot + 1);
    std::uint32_t p = 0;
    const auto [end, ec] = std::from_chars(ptok.data(), ptok.data() + ptok.size(), p);
    if (ec != std::errc() || end != ptok.data() + ptok.size() || p != computed) return {computed, true};
  }
  r.partition = computed;
  return r;
}

}  // namespace vaultrisk::service
