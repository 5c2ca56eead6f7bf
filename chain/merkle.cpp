// StandardMerkleTree.
#include "chain/merkle.hpp"

#include <algorithm>

#include "chain/abi_word.hpp"
#include "chain/keccak.hpp"
#include "core/error.hpp"

namespace vaultrisk::chain {

Hash32 standard_leaf_hash(const Bytes& value) {
  const Hash32 inner = keccak256(value);
  return keccak256(inner.data(), inner.size());
}

StateLeaf StateLeaf::from_values(std::uint64_t epoch, std::uint64_t account, double equity, double mm, double im,
                                 std::uint8_t status) {
  // |x| <= 1e57 fits an int256 at 18 decimals (5.7e58). The numeric domain keeps every
  // account far inside it; one that is not (status 3, a non-finite or impossible value)
  // is committed as quarantined: zeros with status 3, so that no account can stop an epoch.
  constexpr double kMax = 1e57;
  const auto fits = [](double x, double lo) { return x >= lo && x <= kMax; };
  if (status == kQuarantined || !fits(equity, -kMax) || !fits(mm, 0.0) || !fits(im, 0.0))
    return StateLeaf{epoch, account, Word{}, Word{}, Word{}, kQuarantined};
  return StateLeaf{epoch, account, Word::fixed18(equity), Word::fixed18(mm), Word::fixed18(im), status};
}

Hash32 StateLeaf::hash() const {
  Bytes enc;
  enc.reserve(6 * 32);
  append(enc, Word::from_u64(epoch));
  append(enc, Word::from_u64(account));
  append(enc, equity);
  append(enc, mm);
  append(enc, im);
  append(enc, Word::from_u64(status));
  return standard_leaf_hash(enc);
}

Hash32 state_leaf(std::uint64_t epoch, std::uint64_t account, double equity, double mm, double im, std::uint8_t status) {
  return StateLeaf::from_values(epoch, account, equity, mm, im, status).hash();
}

Hash32 intent_leaf(const Hash32& digest) { return standard_leaf_hash(Bytes(digest.begin(), digest.end())); }

Hash32 hash_pair(const Hash32& a, const Hash32& b) {
  std::uint8_t buf[64];
  const bool swap = b < a;
  std::copy((swap ? b : a).begin(), (swap ? b : a).end(), buf);
  std::copy((swap ? a : b).begin(), (swap ? a : b).end(), buf + 32);
  return keccak256(buf, 64);
}

StandardMerkleTree::StandardMerkleTree(std::vector<Hash32> leaves) : leaf_count_(leaves.size()) {
  if (leaves.empty()) throw input_error("a Merkle tree needs at least one leaf");
  std::sort(leaves.begin(), leaves.end());
  const std::size_t n = leaves.size(), len = 2 * n - 1;
  tree_.resize(len);
  for (std::size_t i = 0; i < n; ++i) {
    tree_[len - 1 - i] = leaves[i];
    index_.emplace_back(leaves[i], len - 1 - i);
  }
  // Internal nodes level by level from the deepest; a level's nodes are independent.
  const std::size_t internal = len - n;
  std::size_t first = 0;
  while (2 * first + 1 < internal) first = 2 * first + 1;  // first index of the deepest internal level
  for (;; first = (first - 1) / 2) {
    const std::size_t last = std::min(2 * first + 1, internal);  // one past the level's end
#pragma omp parallel for schedule(static) if (last - first > 4096)
    for (std::size_t i = first; i < last; ++i) tree_[i] = hash_pair(tree_[2 * i + 1], tree_[2 * i + 2]);
    if (first == 0) break;
  }
}

std::vector<Hash32> StandardMerkleTree::proof(const Hash32& leaf) const {
  auto it = std::lower_bound(index_.begin(), index_.end(), std::make_pair(leaf, std::size_t{0}));
  if (it == index_.end() || it->first != leaf) throw input_error("leaf " + to_hex(leaf) + " is not in the tree");
  std::vector<Hash32> out;
  for (std::size_t i = it->second; i > 0; i = (i - 1) / 2) out.push_back(tree_[i % 2 ? i + 1 : i - 1]);
  return out;
}

bool verify_proof(const std::vector<Hash32>& proof, const Hash32& root, const Hash32& leaf) {
  Hash32 h = leaf;
  for (const Hash32& p : proof) h = hash_pair(h, p);
  return h == root;
}

}  // namespace vaultrisk::chain
