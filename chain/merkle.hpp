// OpenZeppelin StandardMerkleTree (@openzeppelin/merkle-tree): double-hashed leaves,
// sorted pairs, leaves sorted by hash and laid out from the end of one array, so
// its proofs verify with OpenZeppelin's MerkleProof.verify. And SPEC §7's state leaf.
#pragma once

#include <cstdint>
#include <vector>

#include "chain/abi_word.hpp"
#include "chain/bytes.hpp"

namespace vaultrisk::chain {

// keccak256(bytes.concat(keccak256(abi_encoded_value))).
Hash32 standard_leaf_hash(const Bytes& abi_encoded_value);

// keccak256(abi.encode(uint64 epoch, uint256 account, int256 equity, uint256 mm,
// uint256 im, uint8 status)), double-hashed; money as 18-decimal fixed point.
Hash32 state_leaf(std::uint64_t epoch, std::uint64_t account, double equity, double mm, double im, std::uint8_t status);

// A state leaf's values as ABI words: what is published for data availability and
// returned with proofs, so that anyone can recompute the leaf.
struct StateLeaf {
  std::uint64_t epoch = 0;
  std::uint64_t account = 0;
  Word equity, mm, im;  // int256, uint256, uint256; 18 decimals
  std::uint8_t status = 0;  // 0 healthy, 1 margin_call, 2 liquidatable, 3 quarantined (AccountStatus::error)
  static constexpr std::uint8_t kQuarantined = 3;
  // From the engine's doubles (rounded half-even). Never throws on values: an account
  // with status 3, a non-finite value, a negative margin or |value| > 1e57 becomes a
  // quarantined leaf (zero words, status 3).
  static StateLeaf from_values(std::uint64_t epoch, std::uint64_t account, double equity, double mm, double im,
                               std::uint8_t status);
  Hash32 hash() const;
};

// Leaf of an intents tree (StandardMerkleTree of type ["bytes32"]).
Hash32 intent_leaf(const Hash32& digest);

class StandardMerkleTree {
 public:
  // Leaves are leaf hashes (see standard_leaf_hash); at least one.
  explicit StandardMerkleTree(std::vector<Hash32> leaves);
  const Hash32& root() const { return tree_.front(); }
  std::size_t size() const { return leaf_count_; }
  // Proof for the leaf with this hash; throws input_error when it is not in the tree.
  std::vector<Hash32> proof(const Hash32& leaf) const;

 private:
  std::vector<Hash32> tree_;
  std::vector<std::pair<Hash32, std::size_t>> index_;  // leaf hash -> tree index, sorted
  std::size_t leaf_count_;
};

Hash32 hash_pair(const Hash32& a, const Hash32& b);
// OpenZeppelin MerkleProof.verify.
bool verify_proof(const std::vector<Hash32>& proof, const Hash32& root, const Hash32& leaf);

}  // namespace vaultrisk::chain
