// EVM primitives against published vectors and exact arithmetic.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "chain/abi_word.hpp"
#include "chain/anchor_client.hpp"
#include "chain/json_rpc.hpp"
#include "chain/eip712.hpp"
#include "chain/keccak.hpp"
#include "chain/merkle.hpp"
#include "chain/rlp.hpp"
#include "chain/secp256k1.hpp"
#include "chain/transaction.hpp"
#include "core/error.hpp"

using namespace vaultrisk;
using namespace vaultrisk::chain;

TEST(Keccak, KnownVectors) {
  EXPECT_EQ(to_hex(keccak256("")), "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
  EXPECT_EQ(to_hex(keccak256("hello")), "0x1c8aff950685c2ed4bc3174f3472287b56d9517b9c948127319a09a7a36deac8");
  // The ERC-20 Transfer event topic.
  EXPECT_EQ(to_hex(keccak256("Transfer(address,address,uint256)")),
            "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
}

TEST(Secp256k1, AddressOfKnownKeys) {
  EXPECT_EQ(to_hex(Signer("0x0000000000000000000000000000000000000000000000000000000000000001").address()),
            "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf");
  // ethers' documentation key.
  EXPECT_EQ(to_hex(Signer("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318").address()),
            "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23");
}

TEST(Secp256k1, SignRecoverRoundTripAndRejections) {
  const Signer s("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318");
  const Hash32 d = personal_message_hash("vaultrisk");
  Signature sig = s.sign(d);
  EXPECT_TRUE(sig[64] == 27 || sig[64] == 28);
  EXPECT_EQ(recover_address(d, sig), s.address());
  EXPECT_EQ(sig, s.sign(d));  // deterministic (RFC 6979)
  // Another message recovers another address.
  EXPECT_NE(recover_address(personal_message_hash("vaultrisk!"), sig), s.address());
  // High-s twin (s' = n - s, v flipped) is rejected as malleable.
  static const std::uint8_t kN[32] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                      0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xBA, 0xAE, 0xDC, 0xE6, 0xAF, 0x48,
                                      0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36, 0x41, 0x41};
  Signature high = sig;
  int borrow = 0;
  for (int i = 31; i >= 0; --i) {
    const int v = kN[i] - sig[32 + i] - borrow;
    high[32 + i] = static_cast<std::uint8_t>(v & 0xff);
    borrow = v < 0;
  }
  high[64] = sig[64] == 27 ? 28 : 27;
  EXPECT_FALSE(recover_address(d, high).has_value());
  Signature bad_v = sig;
  bad_v[64] = 29;
  EXPECT_FALSE(recover_address(d, bad_v).has_value());
  EXPECT_FALSE(signature_from_hex("0x1234").has_value());
  EXPECT_THROW(Signer("0x00"), input_error);
  EXPECT_THROW(Signer("0x0000000000000000000000000000000000000000000000000000000000000000"), input_error);
}

TEST(AbiWord, Fixed18RoundsHalfEvenFromTheExactBinaryValue) {
  EXPECT_EQ(Word::fixed18(1.5).decimal(false), "1500000000000000000");
  EXPECT_EQ(Word::fixed18(0.0).decimal(false), "0");
  EXPECT_EQ(Word::fixed18(-0.0).decimal(true), "0");
  // 0.1 is 0.1000000000000000055511151231257827... in binary.
  EXPECT_EQ(Word::fixed18(0.1).decimal(false), "100000000000000006");
  // 2^-19 * 1e18 = 1907348632812.5 exactly: ties go to the even neighbour.
  EXPECT_EQ(Word::fixed18(1.0 / 524288).decimal(false), "1907348632812");
  EXPECT_EQ(Word::fixed18(3.0 / 524288).decimal(false), "5722045898438");
  EXPECT_EQ(Word::fixed18(-2.25).decimal(true), "-2250000000000000000");
  EXPECT_TRUE(Word::fixed18(-2.25).negative());
  // Two's complement: -1e-18 is all ones.
  EXPECT_EQ(to_hex(Word::fixed18(-1e-18).be), "0x" + std::string(64, 'f'));
  EXPECT_EQ(Word::fixed18(1e30).decimal(false), "1000000000000000019884624838656000000000000000000");
  EXPECT_THROW(Word::fixed18(1e60), input_error);
  EXPECT_THROW(Word::fixed18(NAN), input_error);
  EXPECT_EQ(Word::from_u64(18446744073709551615ull).decimal(false), "18446744073709551615");
}

TEST(Eip712, TypeHashAndDomainFollowTheSpec) {
  EXPECT_EQ(to_hex(keccak256(kLiquidationIntentType)),
            to_hex(keccak256(std::string("LiquidationIntent(uint256 account,uint64 nonce,uint64 deadline,uint64 epoch,"
                                         "int256 equity,uint256 maintenanceMargin,bytes32 marketDigest)"))));
  Eip712Domain a, b;
  b.chain_id = 1;
  EXPECT_NE(domain_separator(a), domain_separator(b));
  LiquidationIntent i;
  i.maintenance_margin = -1;
  EXPECT_THROW(struct_hash(i), input_error);
}

TEST(Merkle, EveryLeafProvesAndTheRootIgnoresInputOrder) {
  std::vector<Hash32> leaves;
  for (std::uint64_t a = 0; a < 37; ++a) leaves.push_back(state_leaf(7, a * 1000 + 1, 1.5 * a - 20, 0.25 * a, 0.5 * a, a % 3));
  const StandardMerkleTree tree(leaves);
  for (const Hash32& leaf : leaves) EXPECT_TRUE(verify_proof(tree.proof(leaf), tree.root(), leaf));
  std::vector<Hash32> reversed(leaves.rbegin(), leaves.rend());
  EXPECT_EQ(StandardMerkleTree(reversed).root(), tree.root());
  // A changed value changes the leaf, and the old proof no longer verifies it.
  const Hash32 forged = state_leaf(7, 1, -20.000000001, 0, 0, 0);
  EXPECT_FALSE(verify_proof(tree.proof(leaves[0]), tree.root(), forged));
  EXPECT_THROW(tree.proof(forged), input_error);
}

TEST(Merkle, SmallTreesFollowTheOpenZeppelinLayout) {
  const Hash32 a = state_leaf(1, 1, 1, 0, 0, 0), b = state_leaf(1, 2, 1, 0, 0, 0), c = state_leaf(1, 3, 1, 0, 0, 0);
  EXPECT_EQ(StandardMerkleTree({a}).root(), a);  // one leaf: the root is the leaf, the proof empty
  EXPECT_TRUE(StandardMerkleTree({a}).proof(a).empty());
  EXPECT_EQ(StandardMerkleTree({a, b}).root(), hash_pair(a, b));
  EXPECT_EQ(hash_pair(a, b), hash_pair(b, a));  // sorted pairs
  // Three leaves sorted s0 < s1 < s2 sit at [4]=s0, [3]=s1, [2]=s2: root = H(H(s1, s0), s2).
  std::vector<Hash32> s{a, b, c};
  std::sort(s.begin(), s.end());
  EXPECT_EQ(StandardMerkleTree({c, a, b}).root(), hash_pair(hash_pair(s[1], s[0]), s[2]));
  EXPECT_THROW(StandardMerkleTree(std::vector<Hash32>{}), input_error);
  // A value no account can have (a negative margin, NaN, past 1e57) commits the account
  // as quarantined: zero words, status 3. One account can never stop an epoch.
  const Hash32 quarantined = state_leaf(1, 1, 0, 0, 0, StateLeaf::kQuarantined);
  EXPECT_EQ(state_leaf(1, 1, 0, -1, 0, 0), quarantined);
  EXPECT_EQ(state_leaf(1, 1, NAN, 1, 1, 0), quarantined);
  EXPECT_EQ(state_leaf(1, 1, 1e59, 1, 1, 2), quarantined);
  EXPECT_EQ(state_leaf(1, 1, 12.5, 1, 1, 3), quarantined);
  EXPECT_NE(state_leaf(1, 1, 1e56, 1, 1, 0), quarantined);
}

// The yellow paper's and the Ethereum wiki's RLP examples.
TEST(Rlp, KnownVectors) {
  const auto str = [](const std::string& s) { return rlp::encode_bytes(Bytes(s.begin(), s.end())); };
  EXPECT_EQ(to_hex(str("dog")), "0x83646f67");
  EXPECT_EQ(to_hex(rlp::encode_list({str("cat"), str("dog")})), "0xc88363617483646f67");
  EXPECT_EQ(to_hex(str("")), "0x80");
  EXPECT_EQ(to_hex(rlp::encode_list({})), "0xc0");
  EXPECT_EQ(to_hex(rlp::encode_uint(0)), "0x80");
  EXPECT_EQ(to_hex(rlp::encode_uint(15)), "0x0f");
  EXPECT_EQ(to_hex(rlp::encode_uint(1024)), "0x820400");
  EXPECT_EQ(to_hex(str(std::string(1, '\0'))), "0x00");
  // The set-theoretic representation of three: [ [], [[]], [ [], [[]] ] ].
  const Bytes e = rlp::encode_list({});
  EXPECT_EQ(to_hex(rlp::encode_list({e, rlp::encode_list({e}), rlp::encode_list({e, rlp::encode_list({e})})})),
            "0xc7c0c1c0c3c0c1c0");
  const std::string lorem = "Lorem ipsum dolor sit amet, consectetur adipisicing elit";  // 56 bytes: long form
  EXPECT_EQ(to_hex(str(lorem)).substr(0, 6), "0xb838");
}

TEST(Transaction, SignedTransactionRecoversToTheSender) {
  const Signer s("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
  Eip1559Tx tx;
  tx.chain_id = 31337;
  tx.nonce = 3;
  tx.max_priority_fee_per_gas = 1000000000;
  tx.max_fee_per_gas = 3000000000;
  tx.gas_limit = 100000;
  tx.to = address_from_hex("0x5fbdb2315678afecb367f032d93f642f64180aa3");
  tx.data = encode_anchor_call(1, Hash32{}, Hash32{}, 2);
  const SignedTx st = sign_transaction(tx, s);
  EXPECT_EQ(st.raw[0], 0x02);
  EXPECT_EQ(st.hash, keccak256(st.raw));
  // The raw bytes end with r and s of a signature over the signing hash that
  // recovers to the sender (RFC 6979: signing again gives the same signature).
  const Signature sig = s.sign(signing_hash(tx));
  EXPECT_EQ(recover_address(signing_hash(tx), sig), s.address());
  Bytes tail = rlp::encode_uint_be(sig.data(), 32);
  const Bytes s_enc = rlp::encode_uint_be(sig.data() + 32, 32);
  tail.insert(tail.end(), s_enc.begin(), s_enc.end());
  ASSERT_GT(st.raw.size(), tail.size());
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), st.raw.end() - static_cast<std::ptrdiff_t>(tail.size())));
  // Another chain id signs another hash.
  Eip1559Tx other = tx;
  other.chain_id = 1;
  EXPECT_NE(signing_hash(other), signing_hash(tx));
  // The first contract of anvil's first account.
  EXPECT_EQ(to_hex(create_address(s.address(), 0)), "0x5fbdb2315678afecb367f032d93f642f64180aa3");
}

TEST(AbiWord, DecimalTextRoundTripsAndRejectsWhatDoesNotFit) {
  for (const char* t : {"0", "1", "-1", "57896044618658097711785492504343953926634992332820282019728792003956564819967",
                        "-57896044618658097711785492504343953926634992332820282019728792003956564819968", "-123456789012345678901"})
    EXPECT_EQ(Word::from_decimal(t, true, "x").decimal(true), t);
  EXPECT_EQ(Word::from_decimal("115792089237316195423570985008687907853269984665640564039457584007913129639935", false, "x")
                .decimal(false),
            "115792089237316195423570985008687907853269984665640564039457584007913129639935");
  EXPECT_EQ(Word::from_decimal("-1", true, "x"), Word::fixed18(-1e-18));
  EXPECT_THROW(Word::from_decimal("57896044618658097711785492504343953926634992332820282019728792003956564819968", true, "x"), input_error);
  EXPECT_THROW(Word::from_decimal("115792089237316195423570985008687907853269984665640564039457584007913129639936", false, "x"), input_error);
  EXPECT_THROW(Word::from_decimal("-1", false, "x"), input_error);
  EXPECT_THROW(Word::from_decimal("12a", true, "x"), input_error);
  EXPECT_THROW(Word::from_decimal("", true, "x"), input_error);
  try {
    Word::from_decimal("1.5", true, "intent.equity");
    FAIL();
  } catch (const input_error& e) {
    EXPECT_NE(std::string(e.what()).find("intent.equity"), std::string::npos);
  }
}

TEST(AnchorClient, RevertReasonsAreDecoded) {
  Bytes d;
  const auto sel = selector("EpochNotIncreasing(uint64,uint64)");
  d.assign(sel.begin(), sel.end());
  append(d, Word::from_u64(3));
  append(d, Word::from_u64(5));
  EXPECT_EQ(describe_revert(d), "EpochNotIncreasing: epoch 3 is not above the last anchored epoch 5");
  const auto np = selector("NotPoster(address)");
  d.assign(np.begin(), np.end());
  append(d, Word::from_address(address_from_hex("0x00000000000000000000000000000000000000aa")));
  EXPECT_EQ(describe_revert(d), "NotPoster: 0x00000000000000000000000000000000000000aa is not the contract's poster");
  EXPECT_EQ(describe_revert({}), "reverted without a reason");
  // Function selectors as solc computes them.
  EXPECT_EQ(to_hex(selector("transfer(address,uint256)")), "0xa9059cbb");
}

TEST(JsonRpc, UnreachableNodesAndBadUrlsAreReportedNotRetriedForever) {
  EXPECT_THROW(JsonRpcClient("ftp://127.0.0.1:1"), input_error);
  JsonRpcClient rpc("http://127.0.0.1:1", RpcOptions{200, 1, 10});  // nothing listens on port 1
  try {
    rpc.chain_id();
    FAIL();
  } catch (const unavailable_error& e) {
    EXPECT_NE(std::string(e.what()).find("after 2 attempts"), std::string::npos) << e.what();
  }
  EXPECT_EQ(quantity(nlohmann::json("0x1a"), "x"), 26u);
  EXPECT_EQ(to_quantity(26), "0x1a");
  EXPECT_THROW(quantity(nlohmann::json("26"), "x"), input_error);
  EXPECT_THROW(quantity(nlohmann::json(26), "x"), input_error);
}
