// A partition's state kept in NATS (SPEC §9), so that any instance can take a
// partition over without another machine's disk: the book (its CSV form) and the
// service's meta (statuses, intents, ticks, the VAULT sequence it covers), sealed
// with a checksum, in chunks on the JetStream stream VAULTRISK_SNAP.
//
//   vaultrisk.snap.p<k>.g<gen>.c<i>   chunk i of generation gen (<= 512 KiB each)
//   vaultrisk.snap.p<k>.head          {"gen", "chunks", "bytes", "xxh3", "vault_seq", ...}
//
// The head is written last, so a reader sees a whole generation or the previous
// one; the previous generation is purged only after the new head is stored.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "kernels/book.hpp"

namespace vaultrisk::service {

class NatsClient;

inline constexpr const char* kSnapshotStream = "VAULTRISK_SNAP";
inline constexpr std::size_t kSnapshotChunkBytes = 512 * 1024;

// The accounts of `book` in partition k of P (every instrument; positions kept with
// their accounts, in order).
Book partition_book(const Book& book, std::uint32_t k, std::uint32_t partitions);

// The sealed blob and back (decode throws input_error naming `where` on damage).
std::string encode_partition_snapshot(const Book& book, const nlohmann::json& meta);
void decode_partition_snapshot(std::string_view blob, Book& book, nlohmann::json& meta, const std::string& where);

// Stores a new generation for partition k; returns its size in bytes.
std::size_t put_partition_snapshot(NatsClient& nats, std::uint32_t k, const std::string& blob, std::uint64_t vault_seq,
                                   const std::string& instance);
// The newest complete generation's blob, or nullopt when partition k has none.
// Throws input_error naming the stream and subject when a chunk is missing or damaged.
// `on_head`, when given, is told the VAULT sequence the generation covers as soon as
// its head is read, before its chunks (a takeover starts its consumer from there).
std::optional<std::string> get_partition_snapshot(NatsClient& nats, std::uint32_t k,
                                                  const std::function<void(std::uint64_t vault_seq)>& on_head = {});

}  // namespace vaultrisk::service
