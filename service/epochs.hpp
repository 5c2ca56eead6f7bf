// Epochs (SPEC §7): what every account's state was when an epoch closed, the
// intents signed during it, the Merkle trees over both, their proofs, and the
// files and messages that make them durable and available to anyone.
//
// In the state dir, epochs/<E>.capture (binary: the leaf values, written durably
// before the epoch is considered closed) and epochs/<E>.json (the roots and how
// far publication and anchoring have got).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "chain/bytes.hpp"
#include "chain/merkle.hpp"

namespace vaultrisk::service {

struct EpochCapture {
  std::uint64_t epoch = 0;
  std::int64_t started_ms = 0, closed_ms = 0;
  std::vector<std::uint64_t> account;  // account ids
  std::vector<double> equity, mm, im;
  std::vector<std::uint8_t> status;    // 0 healthy, 1 margin_call, 2 liquidatable
  std::vector<chain::Hash32> intents;  // digests of the intents signed in the epoch, in order
};

// The epoch's trees. The state tree covers every account; the intents tree is a
// StandardMerkleTree of type ["bytes32"] over the digests. A root is zero when its
// tree would be empty.
class EpochTrees {
 public:
  explicit EpochTrees(const EpochCapture& c);
  std::uint64_t epoch() const { return epoch_; }
  const chain::Hash32& state_root() const { return state_root_; }
  const chain::Hash32& intents_root() const { return intents_root_; }
  const std::vector<chain::StateLeaf>& leaves() const { return leaves_; }  // sorted by account
  const std::vector<chain::Hash32>& intents() const { return intents_; }
  // Nullopt when the account was not in the book when the epoch closed.
  std::optional<nlohmann::json> account_proof(std::uint64_t account) const;
  std::optional<nlohmann::json> intent_proof(const chain::Hash32& digest) const;

 private:
  std::uint64_t epoch_;
  std::vector<chain::StateLeaf> leaves_;
  std::vector<chain::Hash32> leaf_hashes_;  // aligned with leaves_
  std::vector<chain::Hash32> intents_;
  std::optional<chain::StandardMerkleTree> state_tree_, intents_tree_;
  chain::Hash32 state_root_{}, intents_root_{};
};

// A leaf's values as published (decimal strings for the words) and back.
nlohmann::json leaf_json(const chain::StateLeaf& l);
// Throws input_error naming `where` and the field.
chain::StateLeaf leaf_from_json(std::uint64_t epoch, const nlohmann::json& row, const std::string& where);

class EpochStore {
 public:
  explicit EpochStore(const std::filesystem::path& state_dir);
  const std::filesystem::path& dir() const { return dir_; }
  void write_capture(const EpochCapture& c) const;  // durable
  // Throws input_error naming the file when it is missing or damaged.
  EpochCapture read_capture(std::uint64_t epoch) const;
  std::vector<std::uint64_t> captured() const;  // ascending
  std::optional<nlohmann::json> summary(std::uint64_t epoch) const;
  void write_summary(std::uint64_t epoch, const nlohmann::json& s) const;  // durable

 private:
  std::filesystem::path dir_;
};

// Data availability (JetStream stream EPOCHS): the leaves in chunks, then a summary.
inline constexpr const char* kEpochStream = "EPOCHS";
// A cluster's partitions publish their shares of each epoch here (SPEC §9):
// vaultrisk.part.<E>.p<k>.c<i> (leaf values) and vaultrisk.part.<E>.p<k>.done.
inline constexpr const char* kEpochPartsStream = "EPOCH_PARTS";
inline constexpr std::size_t kLeavesPerChunk = 5000;    // ~450 KB per message, under NATS's 1 MB default
inline constexpr std::size_t kIntentsPerChunk = 10000;  // ~670 KB per message
std::string epoch_summary_subject(std::uint64_t epoch);
// vaultrisk.epoch.<E>.<field>.<chunk>, field "leaves" or "intents": the message's
// body is {"epoch", "chunk", <field>: [...]}.
std::string epoch_chunk_subject(std::uint64_t epoch, const std::string& field, std::size_t chunk);

}  // namespace vaultrisk::service
