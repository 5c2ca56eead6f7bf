// Durable service state in --state-dir: snapshots (the book in its CSV format plus
// meta.json) switched by an atomic CURRENT pointer, and a write-ahead log of JSON
// lines appended and fsync'd before anything that depends on them leaves the process.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/book.hpp"

namespace vaultrisk::service {

// Generations: snapshot-G holds the state after every record of wal-1 .. wal-G;
// wal-G holds the records after it. A snapshot starts a new WAL generation at
// once (under the caller) and is written in the background; until its CURRENT
// flips, recovery reads the previous snapshot and every WAL from its generation on.
class StateStore {
 public:
  explicit StateStore(std::filesystem::path dir);
  ~StateStore();

  // The latest complete snapshot, if any: its book and meta. False on a fresh state dir.
  bool load_snapshot(Book& book, nlohmann::json& meta) const;
  // Replays every WAL from the current snapshot's generation on; a torn final line
  // (crash mid-write: never synced, never acted on) is ignored.
  void replay(const std::function<void(const nlohmann::json&)>& record) const;

  // Appends one record (buffered); sync() makes everything appended durable.
  void append(const nlohmann::json& record);
  void sync();

  // Starts a snapshot of `book`/`meta` (the state after everything appended so far):
  // new records go to a new WAL at once, the files are written in the background.
  // Returns false (and does nothing) while a previous snapshot is still being written.
  bool snapshot_async(Book book, nlohmann::json meta);
  // The same, waiting for it to be durable.
  void snapshot(const Book& book, const nlohmann::json& meta);
  std::uint64_t wal_records() const { return wal_records_; }

  // Nonces: durable before use, never reused across restarts.
  std::uint64_t load_nonce() const;
  void store_nonce(std::uint64_t next);

 private:
  void open_wal(std::uint64_t generation);
  void write_snapshot(std::uint64_t generation, const Book& book, const nlohmann::json& meta);
  void join_writer();

  std::filesystem::path dir_;
  std::uint64_t snap_gen_ = 0;  // CURRENT
  std::uint64_t wal_gen_ = 0;   // the WAL being appended to
  int wal_fd_ = -1;
  std::string pending_;
  std::uint64_t wal_records_ = 0;
  std::thread writer_;
  std::atomic<bool> writing_{false};
};

// Writes `content` to `path` durably: temp file, fsync, rename, fsync of the folder.
void write_durable(const std::filesystem::path& path, const std::string& content);

}  // namespace vaultrisk::service
