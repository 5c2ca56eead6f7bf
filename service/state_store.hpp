// Durable service state in --state-dir: snapshots (the book in its CSV format plus
// meta.json) switched by an atomic CURRENT pointer, and a write-ahead log of JSON
// lines appended and fsync'd before anything that depends on them leaves the process.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/book.hpp"

namespace vaultrisk::service {

class StateStore {
 public:
  explicit StateStore(std::filesystem::path dir);
  ~StateStore();

  // The latest snapshot, if any: its book and meta. False on a fresh state dir.
  bool load_snapshot(Book& book, nlohmann::json& meta) const;
  // Replays the WAL of the current snapshot; a torn final line (crash mid-write) is ignored.
  void replay(const std::function<void(const nlohmann::json&)>& record) const;

  // Appends one record (buffered); sync() makes everything appended durable.
  void append(const nlohmann::json& record);
  void sync();

  // Writes a new snapshot, points CURRENT at it, starts an empty WAL, removes the old one.
  void snapshot(const Book& book, const nlohmann::json& meta);
  std::uint64_t wal_records() const { return wal_records_; }

  // Nonces: durable before use, never reused across restarts.
  std::uint64_t load_nonce() const;
  void store_nonce(std::uint64_t next);

 private:
  std::filesystem::path current_dir() const;
  void open_wal();

  std::filesystem::path dir_;
  std::string generation_;  // snapshot name; the WAL is wal-<generation>.jsonl
  int wal_fd_ = -1;
  std::string pending_;
  std::uint64_t wal_records_ = 0;
};

// Writes `content` to `path` durably: temp file, fsync, rename, fsync of the folder.
void write_durable(const std::filesystem::path& path, const std::string& content);

}  // namespace vaultrisk::service
