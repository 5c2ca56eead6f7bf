// Durable service state in --state-dir: snapshots (the book in its CSV format plus
// meta.json, sealed by a checksummed MANIFEST), and a write-ahead log of checksummed
// JSON lines appended and fsync'd before anything that depends on them leaves the
// process. Damage is recovered exactly or refused with the file named.
//
// The WAL is written and fdatasync'd by its own thread, in the order appended: the
// engine thread hands records over (commit_async) and goes on to the next tick, and
// waits (sync) only where something depends on them, before vault events are acked.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/book.hpp"

namespace vaultrisk::service {

// Generations: snapshot-G holds the state after every record of wal-1 .. wal-G;
// wal-G holds the records after it. A snapshot starts a new WAL generation at once
// (under the caller) and is written in the background; its MANIFEST, written last,
// makes it complete. The previous generation (snapshot and WALs) is kept, so that a
// damaged snapshot is recovered exactly from the one before it plus the WALs.
//
// Recovery picks the newest snapshot whose manifest and files verify; CURRENT only
// names it for people. A WAL record whose checksum fails is refused (file, record,
// byte offset), except the very last record of the newest WAL, which a crash can
// leave half-written before it was ever synced or acted on.
class StateStore {
 public:
  // Refuses (input_error naming the file) to open a state dir whose content it cannot
  // trust; with `fresh`, moves what is there aside into discarded-<ms>/ first.
  StateStore(std::filesystem::path dir, bool fresh, std::function<void(const std::string&)> log);
  ~StateStore();

  // True when the dir held a complete snapshot at open: load_snapshot() then succeeds.
  bool has_snapshot() const { return snap_gen_ > 0; }
  // The chosen snapshot's book and meta.
  void load_snapshot(Book& book, nlohmann::json& meta) const;
  // Replays every WAL from the chosen snapshot's generation on.
  void replay(const std::function<void(const nlohmann::json&)>& record) const;

  // A record as one WAL line (checksum, space, JSON, newline). Throws, changing
  // nothing, when the record cannot be written (a string that is not UTF-8).
  static std::string encode(const nlohmann::json& record);
  // Appends one record (buffered here until handed over).
  void append(const nlohmann::json& record) { append_encoded(encode(record)); }
  void append_encoded(std::string line);
  // Hands everything appended so far to the WAL thread, which writes and fdatasyncs
  // it after what it was handed before; returns at once.
  void commit_async();
  // Hands it over and waits until everything appended so far is durable; throws
  // when the WAL cannot be written (the records stay queued and are retried).
  void sync();
  // Called on the WAL thread after each fdatasync: seconds it took and bytes made
  // durable (metrics, and the log of slow disks).
  void on_wal_synced(std::function<void(double seconds, std::size_t bytes)> f);

  // Starts a snapshot of `book` and the meta that `make_meta` returns (the state after
  // everything appended so far): the book is copied here, new records go to a new WAL
  // at once, and the writer thread calls `make_meta` (a copy of the caller's state, to
  // be made JSON off the caller's thread) and writes the files in the background.
  // Returns false (and does nothing) while a previous snapshot is still being written.
  bool snapshot_async(const Book& book, std::function<nlohmann::json()> make_meta);
  // The same, waiting for it to be durable.
  void snapshot(const Book& book, const nlohmann::json& meta);
  // The WAL since the last snapshot began: records and bytes.
  std::uint64_t wal_records() const { return wal_records_; }
  std::uint64_t wal_bytes() const { return wal_bytes_; }
  // True while a snapshot's files are being written (snapshot_async would refuse).
  bool snapshot_writing() const { return writing_; }
  // The size of the last snapshot written (its files' bytes; 0 before the first).
  std::uint64_t last_snapshot_bytes() const { return last_snapshot_bytes_; }

  // Nonces: durable before use, never reused across restarts. The file is sealed;
  // a missing or damaged one reads as nullopt (the caller takes the high-water mark
  // of the other durable records: the WAL, the snapshot's meta, the INTENTS stream).
  std::optional<std::uint64_t> load_nonce() const;
  void store_nonce(std::uint64_t next);

 private:
  void open_wal(std::uint64_t generation);
  std::size_t write_snapshot(std::uint64_t generation, const Book& book, const nlohmann::json& meta);  // bytes written
  void join_writer();
  void wal_loop();
  void choose_snapshot();
  // One WAL's records in order; `newest` forgives a bad checksum on its very last record.
  void replay_file(const std::filesystem::path& wal, bool newest,
                   const std::function<void(const nlohmann::json&)>& record) const;

  std::filesystem::path dir_;
  std::function<void(const std::string&)> log_;
  std::uint64_t snap_gen_ = 0;  // the snapshot recovery starts from (0: none)
  std::uint64_t wal_gen_ = 0;   // the WAL being appended to
  int wal_fd_ = -1;
  std::string pending_;  // appended, not yet handed to the WAL thread
  std::uint64_t wal_records_ = 0;
  std::uint64_t wal_bytes_ = 0;
  std::atomic<std::uint64_t> last_snapshot_bytes_{0};
  // The WAL thread and what it shares with the caller, under wal_mu_.
  std::mutex wal_mu_;
  std::condition_variable wal_cv_;
  std::string wal_queue_;  // handed over, not yet written
  bool wal_busy_ = false;  // a batch is being written and synced
  bool wal_stop_ = false;
  std::string wal_error_;  // why the last write failed; empty once one succeeds
  std::function<void(double, std::size_t)> wal_synced_;
  std::thread wal_thread_;
  std::thread writer_;
  std::atomic<bool> writing_{false};
  // The book as the snapshot being written saw it: copied into on the caller's
  // thread, read by the writer. Kept between snapshots, so that a copy reuses its
  // memory instead of allocating and faulting in the whole book again (on the
  // engine thread at 1M positions: 44 ms and 5,900 page faults, against 16-25 ms
  // and none).
  Book copy_;
};

// Writes `content` to `path` durably: temp file, fsync, rename, fsync of the folder.
void write_durable(const std::filesystem::path& path, const std::string& content);

}  // namespace vaultrisk::service
