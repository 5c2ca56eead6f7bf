// CSV result formatting with shortest round-trip numbers.
#include "io/results_csv.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <unistd.h>

#include <algorithm>

#include "core/error.hpp"
#include "io/number_format.hpp"

namespace vaultrisk::io {

namespace {
void row(std::string& s, std::initializer_list<double> xs) {
  for (double x : xs) {
    s += ',';
    append_number(s, x);
  }
  s += '\n';
}
}  // namespace

const char* status_name(std::uint8_t status) {
  switch (static_cast<AccountStatus>(status)) {
    case AccountStatus::healthy: return "healthy";
    case AccountStatus::margin_call: return "margin_call";
    case AccountStatus::liquidatable: return "liquidatable";
    case AccountStatus::error: return "error";
  }
  return "unknown";
}

void write_price_csv(const std::filesystem::path& path, const Book& book, const InstrumentTable& t) {
  write_rows_atomic(path, "instrument,price,vol,delta,gamma,vega,theta,rho\n", book.instrument_count(),
                    [&](std::size_t i, std::string& s) {
                      s += book.instrument_id[i];
                      row(s, {t.price[i], t.vol[i], t.delta[i], t.gamma[i], t.vega[i], t.theta[i], t.rho[i]});
                    });
}

void write_accounts_csv(const std::filesystem::path& path, const Book& book, const AccountTable& t) {
  write_rows_atomic(path, "account,equity,mm,im,mm_surplus,im_surplus,status\n", book.account_count(),
                    [&](std::size_t a, std::string& s) {
                      append_number(s, book.account_id[a]);
                      for (double x : {t.equity[a], t.mm[a], t.im[a], t.mm_surplus[a], t.im_surplus[a]}) {
                        s += ',';
                        append_number(s, x);
                      }
                      s += ',';
                      s += status_name(t.status[a]);
                      s += '\n';
                    });
}

void write_account_underlyings_csv(const std::filesystem::path& path, const Book& book, const BlockResults& t) {
  write_rows_atomic(path, "account,underlying,mtm,delta,gamma,vega,theta,rho,scan,worst,mm,im\n", t.mtm.size(),
                    [&](std::size_t b, std::string& s) {
                      append_number(s, book.account_id[t.account[b]]);
                      s += ',';
                      s += book.underlyings[t.underlying[b]];
                      for (double x : {t.mtm[b], t.delta[b], t.gamma[b], t.vega[b], t.theta[b], t.rho[b], t.scan[b]}) {
                        s += ',';
                        append_number(s, x);
                      }
                      s += ',';
                      append_number(s, static_cast<std::int64_t>(t.worst[b]));
                      row(s, {t.mm[b], t.im[b]});
                    });
}

namespace {
class TempFile {
 public:
  explicit TempFile(const std::filesystem::path& path)
      : path_(path), tmp_(path.string() + ".tmp." + std::to_string(::getpid())),
        out_(tmp_, std::ios::binary | std::ios::trunc) {
    if (!out_) throw error(tmp_.string() + ": cannot create: " + std::strerror(errno));
  }
  ~TempFile() {
    if (!done_) std::filesystem::remove(tmp_);
  }
  void write(const std::string& s) { out_.write(s.data(), static_cast<std::streamsize>(s.size())); }
  void commit() {
    out_.flush();
    out_.close();
    if (!out_) throw error(tmp_.string() + ": write failed");
    std::filesystem::rename(tmp_, path_);
    done_ = true;
  }

 private:
  std::filesystem::path path_, tmp_;
  std::ofstream out_;
  bool done_ = false;
};
}  // namespace

void write_rows_atomic(const std::filesystem::path& path, const std::string& header, std::size_t rows,
                       const std::function<void(std::size_t, std::string&)>& format_row) {
  TempFile file(path);
  file.write(header);
  // Threads format disjoint chunks of rows, and each chunk goes to the file in
  // order as soon as the chunks before it have: one thread writes while the others
  // format the next ones (no serial write after every round), and memory stays at
  // one chunk per thread.
  constexpr std::size_t kRowsPerChunk = 8192;
  const auto chunks = static_cast<std::int64_t>((rows + kRowsPerChunk - 1) / kRowsPerChunk);
#pragma omp parallel
  {
    std::string s;
#pragma omp for ordered schedule(static, 1)
    for (std::int64_t c = 0; c < chunks; ++c) {
      s.clear();
      const std::size_t lo = static_cast<std::size_t>(c) * kRowsPerChunk, hi = std::min(rows, lo + kRowsPerChunk);
      for (std::size_t i = lo; i < hi; ++i) format_row(i, s);
#pragma omp ordered
      file.write(s);
    }
  }
  file.commit();
}

}  // namespace vaultrisk::io
