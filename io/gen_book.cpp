// Synthetic book generator: crypto-like underlyings, option chains over nine expiries
// (one already expired), a perp each, ~10 positions per account, mixed margin health.
#include "io/gen_book.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "io/market_json.hpp"
#include "io/number_format.hpp"

namespace vaultrisk::io {

namespace {


// SplitMix64: tiny, fast, and identical everywhere; seeded per account so the
// output does not depend on generation order.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  std::uint64_t below(std::uint64_t n) { return next() % n; }
};

struct UnderlyingSpec {
  const char* name;
  double spot, atm_vol;
};
constexpr UnderlyingSpec kUnderlyings[] = {
    {"BTC", 97000, 0.55}, {"ETH", 3400, 0.65}, {"SOL", 180, 0.8},   {"XRP", 2.3, 0.85},
    {"BNB", 650, 0.6},    {"DOGE", 0.35, 0.95}, {"ADA", 0.9, 0.9},  {"AVAX", 38, 0.85},
    {"LINK", 22, 0.85},   {"DOT", 7.5, 0.9}};

// A decimal n * 10^e written exactly ("12.5", "0.01", "97000").
std::string decimal(std::int64_t n, int e) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string s;
  if (e >= 0) {
    s = digits + std::string(static_cast<std::size_t>(e), '0');
  } else {
    const auto frac = static_cast<std::size_t>(-e);
    if (digits.size() <= frac) digits = std::string(frac - digits.size() + 1, '0') + digits;
    const std::size_t point = digits.size() - frac;
    s = digits.substr(0, point) + "." + digits.substr(point);
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return (n < 0 ? "-" : "") + s;
}

int decade(double x) { return static_cast<int>(std::floor(std::log10(x))); }

std::string yyyymmdd(std::int64_t unix_seconds) {
  // Howard Hinnant's civil_from_days.
  std::int64_t z = unix_seconds / 86400 + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = yoe + era * 400 + (m <= 2);
  auto two = [](std::int64_t v) { return (v < 10 ? "0" : "") + std::to_string(v); };
  return std::to_string(y) + two(m) + two(d);
}

// Buffered file written to a temporary name and renamed when complete.
class OutFile {
 public:
  explicit OutFile(std::filesystem::path path)
      : path_(std::move(path)), tmp_(path_.string() + ".tmp"), out_(tmp_, std::ios::binary | std::ios::trunc) {
    if (!out_) throw error(tmp_.string() + ": cannot create");
    buf_.reserve(1 << 20);
  }
  std::string& buf() { return buf_; }
  void maybe_flush() {
    if (buf_.size() >= (1u << 20)) flush();
  }
  void close() {
    flush();
    out_.close();
    if (!out_) throw error(tmp_.string() + ": write failed");
    std::filesystem::rename(tmp_, path_);
  }

 private:
  void flush() {
    out_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
    buf_.clear();
  }
  std::filesystem::path path_, tmp_;
  std::ofstream out_;
  std::string buf_;
};

struct Inst {
  std::string id;
  int und;
  bool perp;
};

}  // namespace

GenBookSummary gen_book(const GenBookOptions& opt, const std::filesystem::path& dir,
                        const std::function<void(std::uint64_t, std::uint64_t)>& progress) {
  if (opt.accounts < 1) throw input_error("--accounts: must be at least 1");
  if (opt.underlyings < 1 || opt.underlyings > 10) throw input_error("--underlyings: must be between 1 and 10");
  std::filesystem::create_directories(dir);
  const int n_und = opt.underlyings;
  const auto kTime = static_cast<double>(opt.time);
  const int days[] = {-1, 1, 7, 14, 30, 60, 90, 180, 365};  // -1: expired yesterday
  const int n_exp = 9;
  const std::uint64_t target = std::max<std::uint64_t>(static_cast<std::uint64_t>(n_und) * 20, opt.accounts / 10);
  const std::uint64_t per_und = (target + n_und - 1) / n_und;
  const std::uint64_t strikes = std::max<std::uint64_t>(3, (per_und - 1) / (n_exp * 2));

  GenBookSummary sum;
  std::vector<Inst> inst;
  Market market;
  market.time = kTime;
  OutFile fi(dir / "instruments.csv");
  fi.buf() = "id,kind,underlying,expiry,strike,type\n";
  for (int u = 0; u < n_und; ++u) {
    const UnderlyingSpec& spec = kUnderlyings[u];
    UnderlyingMarket um;
    um.spot = spec.spot;
    um.rate = 0.01 * (u % 4);
    um.time = kTime;
    const std::string perp_id = std::string(spec.name) + "-PERP";
    fi.buf() += perp_id + ",perp," + spec.name + ",,,\n";
    inst.push_back({perp_id, u, true});
    const int tick_e = decade(spec.spot) - 3;
    for (int e = 0; e < n_exp; ++e) {
      // Expiries at 08:00 UTC, the usual crypto option expiry hour.
      const std::int64_t midnight = opt.time - opt.time % 86400;
      const auto expiry = midnight + days[e] * 86400 + 8 * 3600;
      const double t = (static_cast<double>(expiry) - kTime) / 31536000.0;
      if (t > 0) {
        const double v = spec.atm_vol;
        um.expiries.push_back({static_cast<double>(expiry),
                               SviParams{0.7 * v * v * t, 0.1 * v * std::sqrt(t), -0.3, 0.0, 0.2 * std::sqrt(t) + 0.05}});
      }
      std::int64_t prev = -1;
      for (std::uint64_t k = 0; k < strikes; ++k) {
        const double frac = strikes == 1 ? 1.0 : 0.5 + static_cast<double>(k) / static_cast<double>(strikes - 1);
        auto n = std::max<std::int64_t>(1, std::llround(frac * spec.spot / std::pow(10.0, tick_e)));
        if (n <= prev) n = prev + 1;
        prev = n;
        const std::string ks = decimal(n, tick_e);
        for (const char* type : {"C", "P"}) {
          std::string id = std::string(spec.name) + "-" + yyyymmdd(expiry) + "-" + ks + "-" + type;
          fi.buf() += id + ",option," + spec.name + "," + std::to_string(expiry) + "," + ks + "," + type + "\n";
          inst.push_back({std::move(id), u, false});
        }
      }
      fi.maybe_flush();
    }
    market.underlyings.emplace(spec.name, std::move(um));
  }
  fi.close();
  sum.instruments = inst.size();

  std::vector<std::uint64_t> perps;
  for (std::uint64_t i = 0; i < inst.size(); ++i)
    if (inst[i].perp) perps.push_back(i);

  OutFile fa(dir / "accounts.csv"), fp(dir / "positions.csv");
  fa.buf() = "account,cash\n";
  fp.buf() = "account,instrument,quantity,entry_price\n";
  std::vector<std::uint64_t> chosen;
  const std::uint64_t expected_positions = opt.accounts * 10;
  for (std::uint64_t a = 0; a < opt.accounts; ++a) {
    Rng rng{opt.seed * 0x9E3779B97F4A7C15ull ^ (a + 1) * 0xD1B54A32D192ED03ull};
    const std::uint64_t id = a + 1;
    const auto n_pos = 1 + rng.below(19);
    chosen.clear();
    double notional = 0.0;
    std::string rows;
    while (chosen.size() < n_pos) {
      const std::uint64_t i = rng.uniform() < 0.2 ? perps[rng.below(perps.size())] : rng.below(inst.size());
      if (std::find(chosen.begin(), chosen.end(), i) != chosen.end()) continue;
      chosen.push_back(i);
      const UnderlyingSpec& spec = kUnderlyings[inst[i].und];
      const int lot_e = static_cast<int>(std::lround(std::log10(500.0 / spec.spot)));
      const auto lots = static_cast<std::int64_t>(1 + rng.below(100)) * (rng.uniform() < 0.5 ? -1 : 1);
      notional += std::fabs(static_cast<double>(lots)) * std::pow(10.0, lot_e) * spec.spot;
      rows += std::to_string(id) + "," + inst[i].id + "," + decimal(lots, lot_e) + ",";
      if (inst[i].perp) {
        const int tick_e = decade(spec.spot) - 3;
        const double entry = spec.spot * (0.8 + 0.4 * rng.uniform());
        rows += decimal(std::llround(entry / std::pow(10.0, tick_e)), tick_e);
      }
      rows += "\n";
    }
    // Cash as a fraction of gross notional: most accounts healthy, some margin
    // calls, a few liquidatable.
    const double r = rng.uniform();
    const double frac = r < 0.7 ? 0.3 + 0.7 * rng.uniform() : r < 0.9 ? 0.05 + 0.25 * rng.uniform()
                                                                   : -0.1 + 0.15 * rng.uniform();
    fa.buf() += std::to_string(id) + "," + decimal(std::llround(notional * frac * 100.0), -2) + "\n";
    fp.buf() += rows;
    sum.positions += n_pos;
    fa.maybe_flush();
    fp.maybe_flush();
    if (progress && (a + 1) % 100000 == 0) progress(sum.positions, expected_positions);
  }
  fa.close();
  fp.close();
  sum.accounts = opt.accounts;
  if (progress) progress(sum.positions, sum.positions);

  OutFile fm(dir / "market.json");
  fm.buf() = market_to_json(market);
  fm.close();
  return sum;
}

}  // namespace vaultrisk::io
