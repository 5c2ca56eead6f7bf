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
#include "io/number_format.hpp"
#include "io/results_csv.hpp"

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

StateStore::StateStore(fs::path dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_);
  std::ifstream cur(dir_ / "CURRENT");
  std::getline(cur, generation_);
  if (generation_.empty()) generation_ = "snapshot-0";  // no snapshot yet: WAL only
  open_wal();
}

StateStore::~StateStore() {
  try {
    sync();
  } catch (...) {
  }
  if (wal_fd_ >= 0) ::close(wal_fd_);
}

fs::path StateStore::current_dir() const { return dir_ / generation_; }

void StateStore::open_wal() {
  if (wal_fd_ >= 0) ::close(wal_fd_);
  const fs::path wal = dir_ / ("wal-" + generation_ + ".jsonl");
  wal_fd_ = ::open(wal.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (wal_fd_ < 0) throw error(wal.string() + ": " + std::strerror(errno));
}

bool StateStore::load_snapshot(Book& book, nlohmann::json& meta) const {
  const fs::path d = current_dir();
  if (!fs::exists(d / "meta.json")) return false;
  book = io::load_book(d);
  meta = nlohmann::json::parse(io::read_file(d / "meta.json"));
  return true;
}

void StateStore::replay(const std::function<void(const nlohmann::json&)>& record) const {
  const fs::path wal = dir_ / ("wal-" + generation_ + ".jsonl");
  if (!fs::exists(wal)) return;
  const std::string text = io::read_file(wal);
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) break;  // torn last line: never synced, never acted on
    record(nlohmann::json::parse(text.begin() + static_cast<std::ptrdiff_t>(pos),
                                 text.begin() + static_cast<std::ptrdiff_t>(eol)));
    pos = eol + 1;
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

void StateStore::snapshot(const Book& book, const nlohmann::json& meta) {
  sync();
  const std::string next = "snapshot-" + std::to_string(std::stoull(generation_.substr(9)) + 1);
  const fs::path d = dir_ / next;
  fs::remove_all(d);
  fs::create_directories(d);
  // The book in its own CSV format: inspectable, and loaded by the same strict loader.
  std::string s = "id,kind,underlying,expiry,strike,type\n";
  for (std::size_t i = 0; i < book.instrument_count(); ++i) {
    s += book.instrument_id[i] + (book.kind[i] == InstrumentKind::perp ? ",perp," : ",option,") +
         book.underlyings[book.underlying[i]] + ",";
    if (book.kind[i] == InstrumentKind::option) {
      io::append_number(s, static_cast<std::int64_t>(book.expiry[i]));
      s += ",";
      io::append_number(s, book.strike[i]);
      s += book.is_call[i] ? ",C" : ",P";
    } else {
      s += ",,";
    }
    s += "\n";
  }
  write_durable(d / "instruments.csv", s);
  s = "account,cash\n";
  for (std::size_t a = 0; a < book.account_count(); ++a) {
    io::append_number(s, book.account_id[a]);
    s += ",";
    io::append_number(s, book.cash[a]);
    s += "\n";
  }
  write_durable(d / "accounts.csv", s);
  s = "account,instrument,quantity,entry_price\n";
  for (std::size_t p = 0; p < book.position_count(); ++p) {
    io::append_number(s, book.account_id[book.pos_account[p]]);
    s += "," + book.instrument_id[book.pos_instrument[p]] + ",";
    io::append_number(s, book.pos_quantity[p]);
    s += ",";
    if (book.kind[book.pos_instrument[p]] == InstrumentKind::perp) io::append_number(s, book.pos_entry[p]);
    s += "\n";
  }
  write_durable(d / "positions.csv", s);
  write_durable(d / "meta.json", meta.dump());
  write_durable(dir_ / "CURRENT", next + "\n");
  const std::string old = generation_;
  generation_ = next;
  open_wal();
  wal_records_ = 0;
  fs::remove(dir_ / ("wal-" + old + ".jsonl"));
  fs::remove_all(dir_ / old);
}

std::uint64_t StateStore::load_nonce() const {
  std::ifstream in(dir_ / "nonce");
  std::uint64_t n = 0;
  in >> n;
  return n;
}

void StateStore::store_nonce(std::uint64_t next) { write_durable(dir_ / "nonce", std::to_string(next) + "\n"); }

}  // namespace vaultrisk::service
