// CsvReader implementation.
#include "io/csv_reader.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.hpp"

namespace vaultrisk::io {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw input_error(path.string() + ": cannot open: " + std::strerror(errno));
  std::string data;
  in.seekg(0, std::ios::end);
  const auto size = in.tellg();
  if (size < 0) throw input_error(path.string() + ": cannot read");
  data.resize(static_cast<std::size_t>(size));
  in.seekg(0);
  in.read(data.data(), size);
  if (!in) throw input_error(path.string() + ": read failed");
  return data;
}

Text::Text(std::string s) {
  auto str = std::make_shared<const std::string>(std::move(s));
  data = *str;
  owner = std::move(str);
}

Text Text::map(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw input_error(path.string() + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  void* p = MAP_FAILED;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
    p = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return Text(read_file(path));  // empty, a pipe, or no mapping allowed
  const auto size = static_cast<std::size_t>(st.st_size);
  ::madvise(p, size, MADV_WILLNEED);
  Text t;
  t.owner = std::shared_ptr<const void>(p, [size](const void* q) { ::munmap(const_cast<void*>(q), size); });
  t.data = std::string_view(static_cast<const char*>(p), size);
  return t;
}

CsvReader::CsvReader(const std::filesystem::path& path, std::vector<std::string> columns)
    : CsvReader(path.filename().string(), Text::map(path), std::move(columns)) {}

CsvReader::CsvReader(std::string name, Text text, std::vector<std::string> columns)
    : name_(std::move(name)),
      text_(std::move(text)),
      data_(text_.data),
      columns_(std::move(columns)) {
  fields_.reserve(columns_.size());
  if (data_.size() >= 3 && std::memcmp(data_.data(), "\xEF\xBB\xBF", 3) == 0) pos_ = 3;  // UTF-8 BOM
  std::string expected;
  for (const auto& c : columns_) expected += (expected.empty() ? "" : ",") + c;
  const std::size_t eol = std::min(data_.find('\n', pos_), data_.size());
  std::string_view header(data_.data() + pos_, eol - pos_);
  if (!header.empty() && header.back() == '\r') header.remove_suffix(1);
  if (header != expected)
    throw input_error(name_ + ":1: header must be '" + expected + "', got '" + std::string(header) + "'");
  pos_ = eol < data_.size() ? eol + 1 : eol;
}

CsvReader::CsvReader(const CsvReader& whole, std::size_t begin, std::size_t end, std::int64_t line_before)
    : name_(whole.name_),
      text_(whole.text_),
      data_(whole.data_.substr(0, end)),
      columns_(whole.columns_),
      pos_(begin),
      line_(line_before) {
  fields_.reserve(columns_.size());
}

std::vector<CsvReader> CsvReader::split(int parts) const {
  // Cut points at line starts, about evenly spaced.
  std::vector<std::size_t> cut{pos_};
  const std::size_t size = data_.size();
  for (int k = 1; k < parts; ++k) {
    const std::size_t at = pos_ + (size - pos_) / static_cast<std::size_t>(parts) * static_cast<std::size_t>(k);
    if (at <= cut.back()) continue;
    const std::size_t eol = data_.find('\n', at - 1);  // at - 1: a cut already at a line start stays
    if (eol == std::string_view::npos || eol + 1 >= size) break;
    if (eol + 1 > cut.back()) cut.push_back(eol + 1);
  }
  cut.push_back(size);
  // Each run's first line number: the newlines before it, counted a run at a time.
  std::vector<std::int64_t> lines(cut.size() - 1, 0);
  const auto counted = static_cast<std::int64_t>(lines.size()) - 1;  // the last run's count is not needed
#pragma omp parallel for schedule(static, 1)
  for (std::int64_t k = 0; k < counted; ++k) {
    std::int64_t n = 0;
    for (const char* p = data_.data() + cut[k]; (p = static_cast<const char*>(std::memchr(p, '\n', data_.data() + cut[k + 1] - p)));
         ++p)
      ++n;
    lines[k + 1] = n;
  }
  std::vector<CsvReader> runs;
  std::int64_t line = line_;
  for (std::size_t k = 0; k + 1 < cut.size(); ++k) {
    line += lines[k];
    runs.push_back(CsvReader(*this, cut[k], cut[k + 1], line));
  }
  return runs;
}

std::size_t CsvReader::size_hint() const {
  // Rows are rarely shorter than 16 bytes; an over-estimate only costs memory.
  return (data_.size() - pos_) / 16 + 1;
}

bool CsvReader::next() {
  if (pos_ >= data_.size()) return false;
  ++line_;
  const char* base = data_.data();
  std::size_t eol = data_.find('\n', pos_);
  if (eol == std::string_view::npos) eol = data_.size();
  std::size_t end = eol;
  if (end > pos_ && base[end - 1] == '\r') --end;
  if (end == pos_) {
    // Only trailing blank lines are tolerated: look to the end of the whole text,
    // not of this run (split()).
    if (text_.data.find_first_not_of("\r\n", pos_) == std::string_view::npos) {
      pos_ = data_.size();
      return false;
    }
    fail_line("empty line");
  }
  fields_.clear();
  std::size_t start = pos_;
  for (;;) {
    const void* comma = std::memchr(base + start, ',', end - start);
    const std::size_t stop = comma ? static_cast<std::size_t>(static_cast<const char*>(comma) - base) : end;
    fields_.emplace_back(base + start, stop - start);
    if (!comma) break;
    start = stop + 1;
  }
  pos_ = eol < data_.size() ? eol + 1 : eol;
  if (fields_.size() != columns_.size())
    fail_line("expected " + std::to_string(columns_.size()) + " fields, got " +
              std::to_string(fields_.size()));
  return true;
}

void CsvReader::fail(std::size_t column, const std::string& what) const {
  throw input_error(name_ + ":" + std::to_string(line_) + ": field '" + columns_[column] +
                    "': " + what);
}

void CsvReader::fail_line(const std::string& what) const {
  throw input_error(name_ + ":" + std::to_string(line_) + ": " + what);
}

double CsvReader::number(std::size_t column) const {
  const std::string_view f = fields_[column];
  double x = 0.0;
  const auto r = std::from_chars(f.data(), f.data() + f.size(), x);
  if (f.empty()) fail(column, "missing value");
  if (r.ec != std::errc() || r.ptr != f.data() + f.size() || !std::isfinite(x))
    fail(column, "not a finite number: '" + std::string(f) + "'");
  return x;
}

double CsvReader::number_or(std::size_t column, double fallback) const {
  return fields_[column].empty() ? fallback : number(column);
}

std::uint64_t CsvReader::uint64(std::size_t column) const {
  const std::string_view f = fields_[column];
  std::uint64_t x = 0;
  const auto r = std::from_chars(f.data(), f.data() + f.size(), x);
  if (f.empty()) fail(column, "missing value");
  if (r.ec != std::errc() || r.ptr != f.data() + f.size())
    fail(column, "not an unsigned 64-bit integer: '" + std::string(f) + "'");
  return x;
}

bool valid_token(std::string_view s, std::size_t max_len, bool dots) {
  if (s.empty() || s.size() > max_len) return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || (dots && c == '.');
    if (!ok) return false;
  }
  return true;
}

}  // namespace vaultrisk::io
