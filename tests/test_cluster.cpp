// Cluster building blocks (SPEC §9): the partition function against nats-server's,
// subject partitions, a partition's share of a book, and the sealed partition
// snapshot kept in NATS (round trip exact, damage refused and named).
#include <gtest/gtest.h>

#include <random>

#include "core/error.hpp"
#include "io/book_csv.hpp"
#include "service/partition_snapshot.hpp"
#include "service/partitions.hpp"

using namespace vaultrisk;
using namespace vaultrisk::service;

namespace {

Book sample_book(std::size_t accounts) {
  BookBuilder b;
  const auto perp = b.add_perp("BTC-PERP", "BTC");
  const auto call = b.add_option("ETH-20270101-3000-C", "ETH", 1798761600, 3000, true);
  std::mt19937_64 rng(7);
  for (std::size_t i = 0; i < accounts; ++i) {
    const auto a = b.add_account(1000 + 37 * i, 100.0 + static_cast<double>(rng() % 10000) / 7.0);
    b.add_position(a, perp, static_cast<double>(rng() % 11) - 5.0 + 0.25, 95.0 + static_cast<double>(rng() % 100) / 3.0);
    if (i % 3 == 0) b.add_position(a, call, -1.5);
  }
  return std::move(b).build();
}

}  // namespace

// The values nats-server 2.9 gave for {{partition(8,1)}} of these tokens (read off a
// real server: vault.event.deposit.<a> was delivered as vault.event.deposit.<a>.<p>).
TEST(Partitions, MatchNatsServerPartitionFunction) {
  EXPECT_EQ(partition_of(1, 8), 4u);
  EXPECT_EQ(partition_of(2, 8), 5u);
  EXPECT_EQ(partition_of(3, 8), 2u);
  EXPECT_EQ(partition_of(123, 8), 3u);
  EXPECT_EQ(partition_of(456789, 8), 6u);
  EXPECT_EQ(partition_of(18446744073709551615ull, 8), 4u);
  // FNV-1a 32 of the empty string is its offset basis.
  EXPECT_EQ(partition_of_token("", 1u << 31), 2166136261u % (1u << 31));
}

TEST(Partitions, SubjectPartitions) {
  EXPECT_FALSE(subject_partition("vault.event.instrument.BTC", 8).partition);
  EXPECT_FALSE(subject_partition("vault.event.instrument.BTC", 8).bad);
  EXPECT_EQ(*subject_partition("vault.event.trade.123", 8).partition, 3u);      // unmapped: computed
  EXPECT_EQ(*subject_partition("vault.event.trade.123.3", 8).partition, 3u);    // mapped
  EXPECT_TRUE(subject_partition("vault.event.trade.123.4", 8).bad);             // disagrees
  EXPECT_TRUE(subject_partition("vault.event.trade.123.x", 8).bad);
  EXPECT_TRUE(subject_partition("vault.event.trade.0123", 8).bad);              // not canonical
  EXPECT_TRUE(subject_partition("vault.event.trade", 8).bad);
  EXPECT_TRUE(subject_partition("oracle.tick.BTC", 8).bad);
  EXPECT_FALSE(subject_partition("vault.event.trade.0", 8).bad);
}

TEST(Partitions, PartitionBooksSplitTheBookExactly) {
  const Book book = sample_book(500);
  std::size_t accounts = 0, positions = 0;
  for (std::uint32_t k = 0; k < 4; ++k) {
    const Book p = partition_book(book, k, 4);
    EXPECT_EQ(p.instrument_id, book.instrument_id);
    for (std::size_t a = 0; a < p.account_count(); ++a) EXPECT_EQ(partition_of(p.account_id[a], 4), k);
    for (std::size_t i = 0; i < p.position_count(); ++i) {
      // Each position is the original one of its account, in order.
      const std::uint64_t id = p.account_id[static_cast<std::size_t>(p.pos_account[i])];
      bool found = false;
      for (std::size_t j = 0; j < book.position_count() && !found; ++j)
        found = book.account_id[static_cast<std::size_t>(book.pos_account[j])] == id &&
                book.pos_instrument[j] == p.pos_instrument[i] && book.pos_quantity[j] == p.pos_quantity[i] &&
                book.pos_entry[j] == p.pos_entry[i];
      EXPECT_TRUE(found);
    }
    accounts += p.account_count();
    positions += p.position_count();
  }
  EXPECT_EQ(accounts, book.account_count());
  EXPECT_EQ(positions, book.position_count());
}

TEST(PartitionSnapshot, RoundTripsExactly) {
  const Book book = sample_book(300);
  const nlohmann::json meta = {{"vault_seq", 12345}, {"statuses", {{"1000", 2}}}, {"seen", {"a", "b"}}};
  const std::string blob = encode_partition_snapshot(book, meta);
  Book back;
  nlohmann::json meta_back;
  decode_partition_snapshot(blob, back, meta_back, "test");
  EXPECT_EQ(meta_back, meta);
  const io::BookFiles a = io::format_book(book), b = io::format_book(back);
  EXPECT_EQ(a.instruments, b.instruments);
  EXPECT_EQ(a.accounts, b.accounts);
  EXPECT_EQ(a.positions, b.positions);
  EXPECT_EQ(back.cash, book.cash);
  EXPECT_EQ(back.pos_quantity, book.pos_quantity);
}

TEST(PartitionSnapshot, DamageIsRefusedAndNamed) {
  const std::string blob = encode_partition_snapshot(sample_book(50), {{"vault_seq", 1}});
  Book b;
  nlohmann::json m;
  for (std::size_t at : {std::size_t{0}, blob.size() / 2, blob.size() - 30}) {
    std::string bad = blob;
    bad[at] ^= 0x01;
    try {
      decode_partition_snapshot(bad, b, m, "VAULTRISK_SNAP vaultrisk.snap.p3");
      FAIL() << "a flipped byte at " << at << " was accepted";
    } catch (const input_error& e) {
      EXPECT_NE(std::string(e.what()).find("VAULTRISK_SNAP vaultrisk.snap.p3"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(decode_partition_snapshot(blob.substr(0, blob.size() - 5), b, m, "cut"), input_error);
  EXPECT_THROW(decode_partition_snapshot("", b, m, "empty"), input_error);
}
