// StateStore implementation.
#include "service/state_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

#include "core/checksum.hpp"
#include "core/error.hpp"
#include "io/book_csv.hpp"
#include "io/csv_reader.hpp"
#include "service/background_priority.hpp"

namespace vaultrisk::service {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

void fsync_path(const fs::path& p, bool directory) {
  const int fd = ::open(p.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) throw error(p.string() + ": open for fsync: " + std::strerror(errno));
  ::fsync(fd);
  ::close(fd);
}

// Writes `s` until it is all written or a write fails; returns how much was written,
// with the failure's errno in `err` (0 when none).
std::size_t write_until_error(int fd, const std::string& s, int& err) {
  std::size_t off = 0;
  err = 0;
  while (off < s.size()) {
    const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    off += static_cast<std::size_t>(n);
  }
  return off;
}

void write_all(int fd, const std::string& s, const std::string& what) {
  int err = 0;
  write_until_error(fd, s, err);
  if (err) throw error(what + ": write: " + std::strerror(err));
}

fs::path wal_path(const fs::path& dir, std::uint64_t g) { return dir / ("wal-" + std::to_string(g) + ".jsonl"); }
fs::path snap_path(const fs::path& dir, std::uint64_t g) { return dir / ("snapshot-" + std::to_string(g)); }

constexpr const char* kSnapshotFiles[] = {"instruments.csv", "accounts.csv", "positions.csv", "meta.json"};
constexpr const char* kManifest = "MANIFEST";

// The generation in a name "<prefix><digits><suffix>", if it is one.
std::optional<std::uint64_t> generation(const std::string& name, std::string_view prefix, std::string_view suffix) {
  if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  std::uint64_t g = 0;
  const char* b = name.data() + prefix.size();
  const char* e = name.data() + name.size() - suffix.size();
  const auto r = std::from_chars(b, e, g);
  if (r.ec != std::errc() || r.ptr != e) return std::nullopt;
  return g;
}

std::vector<std::uint64_t> generations(const fs::path& dir, std::string_view prefix, std::string_view suffix) {
  std::vector<std::uint64_t> out;
  for (const auto& entry : fs::directory_iterator(dir))
    if (auto g = generation(entry.path().filename().string(), prefix, suffix)) out.push_back(*g);
  std::sort(out.begin(), out.end());
  return out;
}

// Why snapshot `d` cannot be trusted; empty when its manifest and every file verify.
std::string snapshot_problem(const fs::path& d) {
  const fs::path m = d / kManifest;
  if (!fs::exists(m)) return m.string() + ": missing (the snapshot was never completed)";
  try {
    const std::string sealed = io::read_file(m);
    const json manifest = json::parse(unseal(sealed, m.string()));
    for (const char* name : kSnapshotFiles) {
      const fs::path f = d / name;
      if (!manifest.at("files").contains(name)) return m.string() + ": does not list " + name;
      const json& want = manifest["files"][name];
      if (!fs::exists(f)) return f.string() + ": missing";
      const std::string bytes = io::read_file(f);
      if (bytes.size() != want.at("bytes").get<std::size_t>())
        return f.string() + ": " + std::to_string(bytes.size()) + " bytes where the manifest says " +
               std::to_string(want["bytes"].get<std::size_t>()) + " (cut short or grown)";
      if (checksum_hex(bytes) != want.at("xxh3").get<std::string>())
        return f.string() + ": checksum mismatch with " + m.string() + " (damaged)";
    }
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
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

StateStore::StateStore(fs::path dir, bool fresh, std::function<void(const std::string&)> log)
    : dir_(std::move(dir)), log_(std::move(log)) {
  fs::create_directories(dir_);
  if (fresh) {
    // Everything but the epochs (their numbers must keep increasing on-chain) and the
    // nonce high-water mark goes aside; nothing is deleted.
    std::uint64_t nonce = load_nonce().value_or(0);
    const fs::path aside = dir_ / ("discarded-" + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                    std::chrono::system_clock::now().time_since_epoch())
                                                                    .count()));
    for (const auto& entry : fs::directory_iterator(dir_)) {
      const std::string name = entry.path().filename().string();
      if (name == "epochs" || name.rfind("discarded-", 0) == 0) continue;
      if (generation(name, "wal-", ".jsonl")) {  // best effort: nonces the WAL recorded
        try {
          replay_file(entry.path(), false, [&](const json& r) {
            if (r.value("t", "") == "intent" && r.contains("nonce")) nonce = std::max(nonce, r["nonce"].get<std::uint64_t>() + 1);
          });
        } catch (const std::exception&) {
        }
      }
      fs::create_directories(aside);
      fs::rename(entry.path(), aside / name);
    }
    if (fs::exists(aside)) {
      log_("--fresh-state: moved the previous state to " + aside.string() + "; nonces continue from " +
           std::to_string(nonce));
      if (nonce) store_nonce(nonce);
    }
  }
  choose_snapshot();
  const auto wals = generations(dir_, "wal-", ".jsonl");
  wal_gen_ = std::max(snap_gen_, wals.empty() ? 0 : wals.back());
  open_wal(wal_gen_);
  wal_thread_ = std::thread([this] { wal_loop(); });
}

void StateStore::choose_snapshot() {
  const auto snaps = generations(dir_, "snapshot-", "");
  const auto wals = generations(dir_, "wal-", ".jsonl");
  std::vector<std::string> problems;
  // The nonce file alone is no state: --fresh-state keeps it, to go on above it.
  bool state = fs::exists(dir_ / "CURRENT");
  for (std::uint64_t g : wals) state = state || fs::file_size(wal_path(dir_, g)) > 0;
  for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
    const fs::path d = snap_path(dir_, *it);
    const bool complete = fs::exists(d / kManifest);
    state = state || complete;
    std::string problem = snapshot_problem(d);
    for (std::uint64_t g = *it; problem.empty() && !wals.empty() && g <= wals.back(); ++g)
      if (!fs::exists(wal_path(dir_, g))) problem = wal_path(dir_, g).string() + ": missing (it follows " + d.string() + ")";
    if (problem.empty()) {
      snap_gen_ = *it;
      break;
    }
    if (complete || !problems.empty()) log_("state: not using " + d.string() + ": " + problem);
    problems.push_back(problem);
  }
  if (snap_gen_) {
    if (!problems.empty()) log_("state: recovering from " + snap_path(dir_, snap_gen_).string() + " and the WALs after it");
    std::string current;
    try {
      current = io::read_file(dir_ / "CURRENT");
    } catch (const std::exception&) {
    }
    if (current != "snapshot-" + std::to_string(snap_gen_) + "\n")
      log_("state: " + (dir_ / "CURRENT").string() + " does not name the newest intact snapshot (snapshot-" +
           std::to_string(snap_gen_) + "); it only informs people, recovery verified the snapshots themselves");
    return;
  }
  if (!state) return;  // a fresh state dir (or a first snapshot cut short before any record)
  std::string msg = dir_.string() + ": the state dir is damaged and no intact snapshot is left; refusing to start";
  for (const auto& p : problems) msg += "\n  " + p;
  if (problems.empty()) msg += "\n  no snapshot-<G> folder with a MANIFEST, but CURRENT or a WAL with records exists";
  msg += "\nRestore the state dir from a backup, or start over on purpose with --fresh-state (it keeps the nonce "
         "high-water mark and the epochs, sets the rest aside, and rebuilds the book from --book and the VAULT stream)";
  throw input_error(msg);
}

StateStore::~StateStore() {
  join_writer();
  try {
    sync();
  } catch (const std::exception& e) {
    log_(std::string("state: the last write-ahead records could not be written at shutdown: ") + e.what());
  }
  {
    std::lock_guard<std::mutex> lock(wal_mu_);
    wal_stop_ = true;
  }
  wal_cv_.notify_all();
  wal_thread_.join();
  if (wal_fd_ >= 0) ::close(wal_fd_);
}

void StateStore::join_writer() {
  if (writer_.joinable()) writer_.join();
}

// Called with nothing queued for the WAL thread (at open, and after sync()).
void StateStore::open_wal(std::uint64_t generation) {
  const fs::path wal = wal_path(dir_, generation);
  const int fd = ::open(wal.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) throw error(wal.string() + ": " + std::strerror(errno));
  fsync_path(dir_, true);
  {
    std::lock_guard<std::mutex> lock(wal_mu_);
    if (wal_fd_ >= 0) ::close(wal_fd_);
    wal_fd_ = fd;
    wal_gen_ = generation;
  }
}

void StateStore::load_snapshot(Book& book, json& meta) const {
  VR_EXPECTS(snap_gen_ > 0, "a snapshot was chosen");
  const fs::path d = snap_path(dir_, snap_gen_);
  book = io::load_book(d);
  meta = json::parse(io::read_file(d / "meta.json"));
}

void StateStore::replay_file(const fs::path& wal, bool newest, const std::function<void(const json&)>& record) const {
  const std::string text = io::read_file(wal);
  std::size_t pos = 0, n = 0;
  while (pos < text.size()) {
    const std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) {  // torn last line: never synced, never acted on
      log_("state: " + wal.string() + ": ignoring " + std::to_string(text.size() - pos) +
           " bytes of a record cut short at byte offset " + std::to_string(pos));
      break;
    }
    ++n;
    const std::string_view line(text.data() + pos, eol - pos);
    const bool last = eol + 1 == text.size();
    const bool ok = line.size() > 17 && line[16] == ' ' && checksum_hex(line.substr(17)) == line.substr(0, 16);
    if (!ok) {
      if (newest && last) {
        log_("state: " + wal.string() + ": ignoring the last record (" + std::to_string(n) + ", byte offset " +
             std::to_string(pos) + "): its checksum fails, a write cut short by the crash");
        break;
      }
      throw input_error(wal.string() + ": record " + std::to_string(n) + " at byte offset " + std::to_string(pos) +
                        ": checksum mismatch: the write-ahead log is damaged; refusing to start (restore the state "
                        "dir, or start over on purpose with --fresh-state)");
    }
    record(json::parse(line.substr(17)));
    pos = eol + 1;
  }
}

void StateStore::replay(const std::function<void(const json&)>& record) const {
  for (std::uint64_t g = snap_gen_; g <= wal_gen_; ++g) {
    const fs::path wal = wal_path(dir_, g);
    if (fs::exists(wal)) replay_file(wal, g == wal_gen_, record);
  }
}

std::string StateStore::encode(const json& record) {
  const std::string text = record.dump();  // strict: throws before anything is appended
  std::string line = checksum_hex(text);
  line.reserve(text.size() + 18);
  line += ' ';
  line += text;
  line += '\n';
  return line;
}

void StateStore::append_encoded(std::string line) {
  pending_ += line;
  ++wal_records_;
  wal_bytes_ += line.size();
}

void StateStore::commit_async() {
  if (pending_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(wal_mu_);
    if (wal_queue_.empty()) wal_queue_.swap(pending_);
    else wal_queue_ += pending_;
  }
  pending_.clear();
  wal_cv_.notify_all();
}

void StateStore::sync() {
  commit_async();
  std::unique_lock<std::mutex> lock(wal_mu_);
  wal_cv_.wait(lock, [&] { return (wal_queue_.empty() && !wal_busy_) || !wal_error_.empty(); });
  if (!wal_error_.empty()) throw error(wal_error_);
}

void StateStore::on_wal_synced(std::function<void(double, std::size_t)> f) {
  std::lock_guard<std::mutex> lock(wal_mu_);
  wal_synced_ = std::move(f);
}

// Writes and syncs what it is handed, batch by batch, in order. A failed write keeps
// what was not written at the head of the queue and is retried a little later (a
// full disk may be freed); sync() reports it meanwhile.
void StateStore::wal_loop() {
  std::unique_lock<std::mutex> lock(wal_mu_);
  for (;;) {
    wal_cv_.wait(lock, [&] { return wal_stop_ || !wal_queue_.empty(); });
    if (wal_queue_.empty()) return;  // stopping, with everything written
    if (wal_stop_ && !wal_error_.empty()) return;  // stopping, and the disk still refuses
    std::string batch;
    batch.swap(wal_queue_);
    const int fd = wal_fd_;
    const fs::path wal = wal_path(dir_, wal_gen_);
    const auto synced = wal_synced_;
    wal_busy_ = true;
    lock.unlock();
    const auto t0 = std::chrono::steady_clock::now();
    int write_errno = 0;
    const std::size_t off = write_until_error(fd, batch, write_errno);
    std::string err;
    if (write_errno) err = wal.string() + ": write: " + std::strerror(write_errno);
    if (err.empty() && ::fdatasync(fd) != 0) err = wal.string() + ": fdatasync: " + std::strerror(errno);
    if (err.empty() && synced)
      synced(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), batch.size());
    lock.lock();
    wal_busy_ = false;
    wal_error_ = err;
    if (!err.empty()) {
      // A failed fdatasync leaves the written bytes' durability unknown: they are
      // not written twice (that would tear the WAL), only synced again next time.
      wal_queue_.insert(0, batch, off, std::string::npos);
      wal_cv_.notify_all();
      wal_cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return wal_stop_; });
      continue;
    }
    wal_cv_.notify_all();
  }
}

bool StateStore::snapshot_async(const Book& book, std::function<json()> make_meta) {
  if (writing_) return false;
  join_writer();
  copy_ = book;  // into the last snapshot's memory (its writer is joined); a throw here changes nothing
  sync();  // the snapshot covers everything appended so far ...
  const std::uint64_t g = wal_gen_ + 1;
  open_wal(g);  // ... and what follows goes to the next generation's WAL
  wal_records_ = 0;
  wal_bytes_ = 0;
  writing_ = true;
  writer_ = std::thread([this, g, make_meta = std::move(make_meta)] {
    const Book& book = copy_;
    // Formatting and checksumming the book is seconds of CPU at 10M positions: at the
    // lowest priority, so that it never takes a core from the engine thread.
    lower_this_thread_priority();
    try {
      const auto t0 = std::chrono::steady_clock::now();
      const std::size_t bytes = write_snapshot(g, book, make_meta());
      last_snapshot_bytes_ = bytes;
      log_("snapshot " + std::to_string(g) + " written in the background (nice 19): " + std::to_string(bytes) +
           " bytes, " + std::to_string(book.account_count()) + " accounts, " + std::to_string(book.position_count()) +
           " positions, " +
           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()) +
           " ms");
    } catch (const std::exception& e) {
      log_("snapshot " + std::to_string(g) + " failed (the WAL still holds everything): " + e.what());
    }
    writing_ = false;
  });
  return true;
}

void StateStore::snapshot(const Book& book, const json& meta) {
  while (!snapshot_async(book, [&meta] { return meta; })) join_writer();
  join_writer();
}

std::size_t StateStore::write_snapshot(std::uint64_t g, const Book& book, const json& meta) {
  const fs::path d = snap_path(dir_, g);
  fs::remove_all(d);
  fs::create_directories(d);
  // The book in its own CSV format: inspectable, and loaded by the same strict loader.
  const io::BookFiles files = io::format_book(book);
  const std::pair<const char*, std::string> contents[] = {
      {"instruments.csv", files.instruments}, {"accounts.csv", files.accounts},
      {"positions.csv", files.positions}, {"meta.json", meta.dump()}};
  json manifest = {{"generation", g}, {"files", json::object()}};
  std::size_t bytes = 0;
  for (const auto& [name, content] : contents) {
    write_durable(d / name, content);
    manifest["files"][name] = {{"bytes", content.size()}, {"xxh3", checksum_hex(content)}};
    bytes += content.size();
  }
  write_durable(d / kManifest, seal(manifest.dump(1) + "\n"));  // complete from here on
  write_durable(dir_ / "CURRENT", "snapshot-" + std::to_string(g) + "\n");
  snap_gen_ = g;
  // Older generations than the previous one are redundant: the previous snapshot and
  // its WALs stay, to recover exactly should this one be damaged.
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    auto k = generation(name, "wal-", ".jsonl");
    if (!k) k = generation(name, "snapshot-", "");
    if (k && *k + 1 < g) fs::remove_all(entry.path());
  }
  return bytes;
}

std::optional<std::uint64_t> StateStore::load_nonce() const {
  const fs::path p = dir_ / "nonce";
  if (!fs::exists(p)) return std::nullopt;
  try {
    const std::string sealed = io::read_file(p);
    const std::string_view text = unseal(sealed, p.string());
    std::uint64_t n = 0;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), n);
    if (r.ec != std::errc() || std::string_view(r.ptr, text.data() + text.size() - r.ptr) != "\n")
      throw input_error(p.string() + ": not a nonce");
    return n;
  } catch (const std::exception& e) {
    log_(std::string("state: ignoring the nonce file (the WAL, the snapshot and the INTENTS stream hold the "
                     "high-water mark too): ") + e.what());
    return std::nullopt;
  }
}

void StateStore::store_nonce(std::uint64_t next) { write_durable(dir_ / "nonce", seal(std::to_string(next) + "\n")); }

}  // namespace vaultrisk::service
