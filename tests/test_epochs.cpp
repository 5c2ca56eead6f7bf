// Epoch captures, trees and proofs (service/epochs).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "chain/merkle.hpp"
#include "core/error.hpp"
#include "service/epochs.hpp"

using namespace vaultrisk;
using namespace vaultrisk::service;

namespace {

EpochCapture random_capture(std::uint64_t epoch, std::size_t n, std::size_t intents) {
  std::mt19937_64 rng(epoch * 7 + n);
  std::uniform_real_distribution<double> u(0, 1);
  EpochCapture c;
  c.epoch = epoch;
  c.started_ms = 1700000000000;
  c.closed_ms = c.started_ms + 60000;
  for (std::size_t i = 0; i < n; ++i) {
    c.account.push_back(rng() % 1000000 + i * 1000000);  // distinct, not sorted
    c.equity.push_back((u(rng) - 0.3) * 1e6);
    c.mm.push_back(u(rng) * 1e5);
    c.im.push_back(c.mm.back() * 1.5);
    c.status.push_back(static_cast<std::uint8_t>(rng() % 3));
  }
  std::reverse(c.account.begin(), c.account.end());
  for (std::size_t k = 0; k < intents; ++k) {
    chain::Hash32 h;
    for (auto& b : h) b = static_cast<std::uint8_t>(rng());
    c.intents.push_back(h);
  }
  return c;
}

std::filesystem::path temp_dir() {
  auto p = std::filesystem::temp_directory_path() / ("vr-epochs-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                                                      "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(p);
  return p;
}

}  // namespace

TEST(Epochs, CaptureRoundTripsAndDamageIsNamed) {
  const auto dir = temp_dir();
  const EpochStore store(dir);
  const EpochCapture c = random_capture(4, 257, 3);
  store.write_capture(c);
  store.write_capture(random_capture(2, 5, 0));
  EXPECT_EQ(store.captured(), (std::vector<std::uint64_t>{2, 4}));
  const EpochCapture r = store.read_capture(4);
  EXPECT_EQ(r.epoch, 4u);
  EXPECT_EQ(r.closed_ms, c.closed_ms);
  EXPECT_EQ(r.account, c.account);
  EXPECT_EQ(r.equity, c.equity);
  EXPECT_EQ(r.mm, c.mm);
  EXPECT_EQ(r.im, c.im);
  EXPECT_EQ(r.status, c.status);
  EXPECT_EQ(r.intents, c.intents);
  EXPECT_THROW(store.read_capture(3), input_error);
  // A truncated file is reported with its path, not read.
  std::filesystem::resize_file(dir / "epochs" / "4.capture", 100);
  try {
    store.read_capture(4);
    FAIL();
  } catch (const input_error& e) {
    EXPECT_NE(std::string(e.what()).find("4.capture"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(Epochs, EveryAccountProvesAgainstTheStateRoot) {
  const EpochCapture c = random_capture(9, 300, 5);
  const EpochTrees t(c);
  EXPECT_EQ(t.leaves().size(), 300u);
  for (std::size_t i = 0; i < c.account.size(); i += 7) {
    const auto p = t.account_proof(c.account[i]);
    ASSERT_TRUE(p);
    const chain::Hash32 leaf = chain::state_leaf(9, c.account[i], c.equity[i], c.mm[i], c.im[i], c.status[i]);
    EXPECT_EQ((*p)["leafHash"], chain::to_hex(leaf));
    std::vector<chain::Hash32> proof;
    for (const auto& h : (*p)["proof"]) proof.push_back(chain::hash_from_hex(h.get<std::string>()));
    EXPECT_TRUE(chain::verify_proof(proof, t.state_root(), leaf));
    // The published values rebuild the same leaf.
    const nlohmann::json row = nlohmann::json::array({(*p)["leaf"]["account"], (*p)["leaf"]["equity"], (*p)["leaf"]["mm"],
                                                      (*p)["leaf"]["im"], (*p)["leaf"]["status"]});
    EXPECT_EQ(leaf_from_json(9, row, "row").hash(), leaf);
  }
  EXPECT_FALSE(t.account_proof(999999999999));
  for (const auto& d : c.intents) {
    const auto p = t.intent_proof(d);
    ASSERT_TRUE(p);
    std::vector<chain::Hash32> proof;
    for (const auto& h : (*p)["proof"]) proof.push_back(chain::hash_from_hex(h.get<std::string>()));
    EXPECT_TRUE(chain::verify_proof(proof, t.intents_root(), chain::intent_leaf(d)));
  }
}

TEST(Epochs, EmptyTreesHaveZeroRoots) {
  const EpochTrees t(random_capture(1, 0, 0));
  EXPECT_EQ(t.state_root(), chain::Hash32{});
  EXPECT_EQ(t.intents_root(), chain::Hash32{});
  EXPECT_FALSE(t.account_proof(1));
}

TEST(Epochs, PublishedLeafRowsAreCheckedFieldByField) {
  EXPECT_THROW(leaf_from_json(1, nlohmann::json::array({"1", "2", "3", "4"}), "c[0]"), input_error);
  EXPECT_THROW(leaf_from_json(1, nlohmann::json::array({"1", "2", "-3", "4", 0}), "c[0]"), input_error);
  EXPECT_THROW(leaf_from_json(1, nlohmann::json::array({"1", "2", "3", "4", 4}), "c[0]"), input_error);
  try {
    leaf_from_json(1, nlohmann::json::array({"1", "2.5", "3", "4", 0}), "vaultrisk.epoch.1.leaves.0[7]");
    FAIL();
  } catch (const input_error& e) {
    EXPECT_NE(std::string(e.what()).find("vaultrisk.epoch.1.leaves.0[7].equity"), std::string::npos) << e.what();
  }
}
