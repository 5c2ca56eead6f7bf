// CSV result formatting with shortest round-trip numbers.
#include "io/results_csv.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <unistd.h>

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
  }
  return "unknown";
}

std::string price_csv(const Book& book, const InstrumentTable& t) {
  std::string s = "instrument,price,vol,delta,gamma,vega,theta,rho\n";
  s.reserve(book.instrument_count() * 160);
  for (std::size_t i = 0; i < book.instrument_count(); ++i) {
    s += book.instrument_id[i];
    row(s, {t.price[i], t.vol[i], t.delta[i], t.gamma[i], t.vega[i], t.theta[i], t.rho[i]});
  }
  return s;
}

std::string accounts_csv(const Book& book, const AccountTable& t) {
  std::string s = "account,equity,mm,im,mm_surplus,im_surplus,status\n";
  s.reserve(book.account_count() * 110);
  for (std::size_t a = 0; a < book.account_count(); ++a) {
    append_number(s, book.account_id[a]);
    for (double x : {t.equity[a], t.mm[a], t.im[a], t.mm_surplus[a], t.im_surplus[a]}) {
      s += ',';
      append_number(s, x);
    }
    s += ',';
    s += status_name(t.status[a]);
    s += '\n';
  }
  return s;
}

std::string account_underlyings_csv(const Book& book, const BlockResults& t) {
  std::string s = "account,underlying,mtm,delta,gamma,vega,theta,rho,scan,worst,mm,im\n";
  s.reserve(t.mtm.size() * 200);
  for (std::size_t b = 0; b < t.mtm.size(); ++b) {
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
  }
  return s;
}

void write_file_atomic(const std::filesystem::path& path, const std::string& content) {
  const std::filesystem::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw error(tmp.string() + ": cannot create: " + std::strerror(errno));
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    if (!out) {
      std::filesystem::remove(tmp);
      throw error(tmp.string() + ": write failed");
    }
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace vaultrisk::io
