// Scenario inputs of `vaultrisk stress`.
#include "io/stress_inputs.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.hpp"
#include "io/csv_reader.hpp"
#include "io/json_fields.hpp"

namespace vaultrisk::io {

namespace {

std::int32_t underlying_index(const std::vector<std::string>& unds, const std::string& name, const std::string& path) {
  const auto it = std::lower_bound(unds.begin(), unds.end(), name);
  if (it == unds.end() || *it != name) {
    std::string known;
    for (const auto& u : unds) known += (known.empty() ? "" : ", ") + u;
    throw input_error(path + ": '" + name + "' is not an underlying of the book (" + known + ")");
  }
  return static_cast<std::int32_t>(it - unds.begin());
}

void check_range(double x, double lo, double hi, bool open_lo, const std::string& path) {
  if (!(std::isfinite(x) && (open_lo ? x > lo : x >= lo) && x <= hi)) {
    char buf[160];
    std::snprintf(buf, sizeof buf, ": %.17g is outside %s%g, %g]", x, open_lo ? "(" : "[", lo, hi);
    throw out_of_range_error(path + buf);
  }
}

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
  });
}

// "YYYY-MM-DD", a real calendar date.
bool valid_date(std::string_view d) {
  if (d.size() != 10 || d[4] != '-' || d[7] != '-') return false;
  for (std::size_t k : {0, 1, 2, 3, 5, 6, 8, 9})
    if (d[k] < '0' || d[k] > '9') return false;
  const int y = std::stoi(std::string(d.substr(0, 4))), m = std::stoi(std::string(d.substr(5, 2))),
            day = std::stoi(std::string(d.substr(8, 2)));
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || day < 1) return false;
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return day <= days[m - 1] + (m == 2 && leap ? 1 : 0);
}

}  // namespace

NamedScenarios parse_named_scenarios(std::string_view text, const std::string& source,
                                     const std::vector<std::string>& unds) {
  const json j = parse_json(text, source);
  require_object(j, source, {"horizon_days", "scenarios"});
  NamedScenarios out;
  out.horizon_days = number_or(j, "horizon_days", 0.0, source);
  check_range(out.horizon_days, 0.0, kMaxHorizonDays, false, source + ": horizon_days");
  if (!j.contains("scenarios") || !j["scenarios"].is_array() || j["scenarios"].empty())
    throw input_error(source + ": scenarios: must be a non-empty array");
  const std::size_t n_und = unds.size();
  std::map<std::string, std::size_t> seen;
  for (std::size_t k = 0; k < j["scenarios"].size(); ++k) {
    const std::string p = source + ": scenarios[" + std::to_string(k) + "]";
    const json& s = require_object(j["scenarios"][k], p, {"name", "shocks"});
    if (!s.contains("name") || !s["name"].is_string() || !valid_name(s["name"].get<std::string>()))
      throw input_error(p + ".name: must be 1-64 characters of [A-Za-z0-9._-] (it names CSV columns)");
    const std::string name = s["name"].get<std::string>();
    if (const auto [it, fresh] = seen.emplace(name, k); !fresh)
      throw input_error(p + ".name: '" + name + "' repeats scenarios[" + std::to_string(it->second) + "]");
    out.table.names.push_back(name);
    out.table.spot_mult.resize(out.table.spot_mult.size() + n_und, 1.0);
    out.table.dvol.resize(out.table.dvol.size() + n_und, 0.0);
    if (!s.contains("shocks")) continue;
    const json& shocks = s["shocks"];
    if (!shocks.is_object()) throw input_error(p + ".shocks: must be an object {UNDERLYING: {\"spot\", \"vol\"}}");
    for (const auto& [und, shock] : shocks.items()) {
      const std::string sp = p + ".shocks." + und;
      const std::size_t u = static_cast<std::size_t>(underlying_index(unds, und, sp));
      require_object(shock, sp, {"spot", "vol"});
      const double sm = number_or(shock, "spot", 1.0, sp), dv = number_or(shock, "vol", 0.0, sp);
      check_range(sm, 0.0, kMaxSpotMultiplier, true, sp + ".spot");
      check_range(dv, -kMaxVolShift, kMaxVolShift, false, sp + ".vol");
      out.table.spot_mult[k * n_und + u] = sm;
      out.table.dvol[k * n_und + u] = dv;
    }
  }
  return out;
}

NamedScenarios load_named_scenarios(const std::filesystem::path& path, const std::vector<std::string>& unds) {
  return parse_named_scenarios(read_file(path), path.string(), unds);
}

ScenarioTable parse_history(std::string_view text, const std::string& source, const std::vector<std::string>& unds,
                            std::int64_t h, bool filtered, const std::vector<double>& sigma) {
  CsvReader r(source, std::string(text), {"date", "underlying", "spot", "atm_vol"});
  enum { DATE, UND, SPOT, VOL };
  const std::size_t n_und = unds.size();
  struct Row {
    double spot = NAN, vol = NAN;
    std::int64_t line = 0;
  };
  std::map<std::string, std::vector<Row>> by_date;  // ISO dates sort as text
  while (r.next()) {
    const std::string date(r.field(DATE));
    if (!valid_date(date)) r.fail(DATE, "must be an ISO date YYYY-MM-DD, got '" + date + "'");
    const std::string und(r.field(UND));
    const auto it = std::lower_bound(unds.begin(), unds.end(), und);
    if (it == unds.end() || *it != und) continue;  // history may hold more underlyings than the book
    const double spot = r.number(SPOT), vol = r.number(VOL);
    if (!(spot > 0.0 && spot <= 1e9)) r.fail(SPOT, "must be in (0, 1e+09]");
    if (!(vol > 0.0 && vol <= 10.0)) r.fail(VOL, "must be in (0, 10]");
    auto& rows = by_date[date];
    rows.resize(n_und);
    Row& row = rows[static_cast<std::size_t>(it - unds.begin())];
    if (row.line) r.fail(UND, "repeats " + und + " on " + date + " (first on line " + std::to_string(row.line) + ")");
    row = Row{spot, vol, r.line()};
  }
  std::vector<std::string> dates;
  std::vector<const std::vector<Row>*> rows;
  for (const auto& [date, rs] : by_date) {
    for (std::size_t u = 0; u < n_und; ++u)
      if (!rs[u].line) throw input_error(source + ": date " + date + " has no row for underlying " + unds[u]);
    dates.push_back(date);
    rows.push_back(&rs);
  }
  if (h < 1) throw input_error("--horizon-days must be at least 1 for history (rows, not calendar days)");
  if (static_cast<std::int64_t>(dates.size()) <= h)
    throw input_error(source + ": " + std::to_string(dates.size()) + " dates cannot give a " + std::to_string(h) +
                      "-row horizon (need at least " + std::to_string(h + 1) + ")");
  ScenarioTable t;
  for (std::size_t i = 0; i + static_cast<std::size_t>(h) < dates.size(); ++i) {
    const auto& a = *rows[i];
    const auto& b = *rows[i + static_cast<std::size_t>(h)];
    t.names.push_back(dates[i + static_cast<std::size_t>(h)]);
    for (std::size_t u = 0; u < n_und; ++u) {
      const double ratio = b[u].spot / a[u].spot;
      t.spot_mult.push_back(filtered ? std::exp(std::log(ratio) * sigma[u] / a[u].vol) : ratio);
      t.dvol.push_back(b[u].vol - a[u].vol);
    }
  }
  return t;
}

ScenarioTable load_history(const std::filesystem::path& path, const std::vector<std::string>& unds, std::int64_t h,
                           bool filtered, const std::vector<double>& sigma) {
  return parse_history(read_file(path), path.filename().string(), unds, h, filtered, sigma);
}

MonteCarloSpec parse_mc_model(std::string_view text, const std::string& source, const std::vector<std::string>& unds,
                              const std::vector<double>& default_sigma) {
  const json j = text.empty() ? json::object() : parse_json(text, source);
  require_object(j, source, {"vol", "correlation", "vol_of_vol", "spot_vol_correlation"});
  const std::size_t n = unds.size();
  MonteCarloSpec mc;
  mc.sigma = default_sigma;
  mc.vol_of_vol.assign(n, 0.0);
  mc.correlation.assign(n * n, 0.0);
  for (std::size_t u = 0; u < n; ++u) mc.correlation[u * n + u] = 1.0;
  const auto per_und = [&](const char* key, std::vector<double>& out, double hi) {
    if (!j.contains(key)) return;
    const std::string p = source + ": " + key;
    if (!j[key].is_object()) throw input_error(p + ": must be an object {UNDERLYING: number}");
    for (const auto& [und, v] : j[key].items()) {
      const std::string vp = p + "." + und;
      const std::size_t u = static_cast<std::size_t>(underlying_index(unds, und, vp));
      if (!v.is_number()) throw input_error(vp + ": must be a number");
      check_range(v.get<double>(), 0.0, hi, std::string(key) == "vol", vp);
      out[u] = v.get<double>();
    }
  };
  per_und("vol", mc.sigma, 10.0);
  per_und("vol_of_vol", mc.vol_of_vol, 10.0);
  for (std::size_t u = 0; u < n; ++u)
    if (!(mc.sigma[u] > 0.0))
      throw input_error(source + ": vol." + unds[u] + ": missing, and the market gives no ATM vol for it");
  if (j.contains("correlation")) {
    const std::string p = source + ": correlation";
    if (!j["correlation"].is_object()) throw input_error(p + ": must be an object {\"A/B\": rho}");
    for (const auto& [pair, v] : j["correlation"].items()) {
      const std::string vp = p + "." + pair;
      const std::size_t slash = pair.find('/');
      if (slash == std::string::npos) throw input_error(vp + ": the key must be two underlyings, \"A/B\"");
      const auto a = static_cast<std::size_t>(underlying_index(unds, pair.substr(0, slash), vp));
      const auto b = static_cast<std::size_t>(underlying_index(unds, pair.substr(slash + 1), vp));
      if (a == b) throw input_error(vp + ": an underlying's correlation with itself is 1");
      if (!v.is_number()) throw input_error(vp + ": must be a number");
      check_range(v.get<double>(), -1.0, 1.0, false, vp);
      mc.correlation[a * n + b] = mc.correlation[b * n + a] = v.get<double>();
    }
  }
  mc.spot_vol_correlation = number_or(j, "spot_vol_correlation", 0.0, source);
  check_range(mc.spot_vol_correlation, -1.0, 1.0, false, source + ": spot_vol_correlation");
  try {
    cholesky(mc.correlation, static_cast<std::int32_t>(n));
  } catch (const input_error& e) {
    throw input_error(source + ": correlation: " + e.what());
  }
  return mc;
}

}  // namespace vaultrisk::io
