// StateStore implementation.
#include "service/state_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>

#include "core/error.hpp"
#include "io/book_csv.hpp"
#include "io/csv_reader.hpp"

namespace vaultrisk::service {

namespace fs = std::filesystem;

namespace {

void fsync_path(const fs::path& p, bool directory) {
  const int fd = ::open(p.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) throw error(p.string() + ": open for fsync: " + std::strerror(errno));
  ::fsync(fd);
  ::close(fd);
}

void write_all(int fd, const std::string& s, const std::string& what) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw error(what + ": write: " + std::strerror(errno));
    }
    off += static_cast<std::size_t>(n);
  }
}

}  // namespace

void write_durable(const fs::path& path, const std::string& content) {
  const fs::path tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw error(tmp.string() + ": " + std::strerror(errno));
  write_all(fd, content, tmp.string());
  ::fsync(fd);
  ::close(fd);
  fs::rename(tmp, path);
  fsync_path(path.parent_path().empty() ? fs::path(".") : path.parent_path(), true);
}

namespace {
fs::path wal_path(const fs::path& dir, std::uint64_t g) { return dir / ("wal-" + std::to_string(g) + ".jsonl"); }
fs::path snap_path(const fs::path& dir, std::uint64_t g) { return dir / ("snapshot-" + std::to_string(g)); }
}  // namespace

StateStore::StateStore(fs::path dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_);
  std::ifstream cur(dir_ / "CURRENT");
  std::string name;
  std::getline(cur, name);
  if (name.rfind("snapshot-", 0) == 0) snap_gen_ = std::stoull(name.substr(9));
  // Keep appending to the newest WAL: a snapshot may have been cut short by a crash.
  wal_gen_ = snap_gen_;
  while (fs::exists(wal_path(dir_, wal_gen_ + 1))) ++wal_gen_;
  open_wal(wal_gen_);
}

StateStore::~StateStore() {
  join_writer();
  try {
    sync();
  } catch (...) {
  }
  if (wal_fd_ >= 0) ::close(wal_fd_);
}

void StateStore::join_writer() {
  if (writer_.joinable()) writer_.join();
}

void StateStore::open_wal(std::uint64_t generation) {
  if (wal_fd_ >= 0) ::close(wal_fd_);
  const fs::path wal = wal_path(dir_, generation);
  wal_fd_ = ::open(wal.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (wal_fd_ < 0) throw error(wal.string() + ": " + std::strerror(errno));
  fsync_path(dir_, true);
  wal_gen_ = generation;
}

bool StateStore::load_snapshot(Book& book, nlohmann::json& meta) const {
  const fs::path d = snap_path(dir_, snap_gen_);
  if (snap_gen_ == 0 || !fs::exists(d / "meta.json")) return false;
  book = io::load_book(d);
  meta = nlohmann::json::parse(io::read_file(d / "meta.json"));
  return true;
}

void StateStore::replay(const std::function<void(const nlohmann::json&)>& record) const {
  for (std::uint64_t g = snap_gen_; g <= wal_gen_; ++g) {
    const fs::path wal = wal_path(dir_, g);
    if (!fs::exists(wal)) continue;
    const std::string text = io::read_file(wal);
    std::size_t pos = 0;
    while (pos < text.size()) {
      const std::size_t eol = text.find('\n', pos);
      if (eol == std::string::npos) break;  // torn last line
      record(nlohmann::json::parse(text.begin() + static_cast<std::ptrdiff_t>(pos),
                                   text.begin() + static_cast<std::ptrdiff_t>(eol)));
      pos = eol + 1;
    }
  }
}

void StateStore::append(const nlohmann::json& record) {
  pending_ += record.dump();
  pending_ += '\n';
  ++wal_records_;
}

void StateStore::sync() {
  if (pending_.empty()) return;
  write_all(wal_fd_, pending_, "wal");
  ::fdatasync(wal_fd_);
  pending_.clear();
}

bool StateStore::snapshot_async(Book book, nlohmann::json meta) {
  if (writing_) return false;
  join_writer();
  sync();  // the snapshot covers everything appended so far ...
  const std::uint64_t g = wal_gen_ + 1;
  open_wal(g);  // ... and what follows goes to the next generation's WAL
  wal_records_ = 0;
  writing_ = true;
  writer_ = std::thread([this, g, book = std::move(book), meta = std::move(meta)] {
    try {
      write_snapshot(g, book, meta);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "[vaultrisk serve] snapshot %llu failed (the WAL still holds everything): %s\n",
                   static_cast<unsigned long long>(g), e.what());
    }
    writing_ = false;
  });
  return true;
}

void StateStore::snapshot(const Book& book, const nlohmann::json& meta) {
  while (!snapshot_async(book, meta)) join_writer();
  join_writer();
}

void StateStore::write_snapshot(std::uint64_t g, const Book& book, const nlohmann::json& meta) {
  const fs::path d = snap_path(dir_, g);
  fs::remove_all(d);
  fs::create_directories(d);
  // The book in its own CSV format: inspectable, and loaded by the same strict loader.
  const io::BookFiles files = io::format_book(book);
  write_durable(d / "instruments.csv", files.instruments);
  write_durable(d / "accounts.csv", files.accounts);
  write_durable(d / "positions.csv", files.positions);
  write_durable(d / "meta.json", meta.dump());
  write_durable(dir_ / "CURRENT", "snapshot-" + std::to_string(g) + "\n");  // the switch
  snap_gen_ = g;
  // Everything of an older generation is now redundant (also leftovers of a crash
  // between the switch and this clean-up).
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    std::uint64_t k = 0;
    const bool wal = name.rfind("wal-", 0) == 0, snap = name.rfind("snapshot-", 0) == 0;
    if (!wal && !snap) continue;
    const char* digits = name.c_str() + (wal ? 4 : 9);
    const auto r = std::from_chars(digits, name.c_str() + name.size(), k);
    if (r.ec == std::errc() && k < g) fs::remove_all(entry.path());
  }
}

std::uint64_t StateStore::load_nonce() const {
  std::ifstream in(dir_ / "nonce");
  std::uint64_t n = 0;
  in >> n;
  return n;
}

void StateStore::store_nonce(std::uint64_t next) { write_durable(dir_ / "nonce", std::to_string(next) + "\n"); }

}  // namespace vaultrisk::service
