// scenarios.csv, accounts.csv, summary.json and report.html of `vaultrisk stress`.
#include "io/stress_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "io/json_fields.hpp"
#include "io/number_format.hpp"
#include "io/results_csv.hpp"

namespace vaultrisk::io {

namespace {

std::string num(double x) {
  std::string s;
  append_number(s, x);
  return s;
}

std::string fixed(double x, int digits = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

// 1234567.8 -> "1.23M": axis labels and cards.
std::string compact(double x) {
  const double a = std::fabs(x);
  char buf[32];
  if (a >= 1e9) std::snprintf(buf, sizeof buf, "%.3gB", x / 1e9);
  else if (a >= 1e6) std::snprintf(buf, sizeof buf, "%.3gM", x / 1e6);
  else if (a >= 1e3) std::snprintf(buf, sizeof buf, "%.3gk", x / 1e3);
  else std::snprintf(buf, sizeof buf, "%.3g", x);
  return buf;
}

std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string scenario_name(const StressSpec& spec, std::int64_t i) {
  return spec.source == StressSource::monte_carlo ? std::to_string(i) : spec.table.names[static_cast<std::size_t>(i)];
}

// --- SVG charts -------------------------------------------------------------------

constexpr int kW = 720, kH = 300, kLeft = 70, kRight = 20, kTop = 20, kBottom = 50;

struct Marker {
  double x;
  std::string label, color;
};

// A histogram of `values` in `bins` bins, with vertical markers.
std::string histogram_svg(const std::string& id, const std::vector<double>& values, int bins, const std::string& xlabel,
                          const std::vector<Marker>& markers, const std::string& color) {
  double lo = *std::min_element(values.begin(), values.end()), hi = *std::max_element(values.begin(), values.end());
  for (const Marker& m : markers) lo = std::min(lo, m.x), hi = std::max(hi, m.x);
  if (!(hi > lo)) hi = lo + 1.0, lo -= 1.0;
  std::vector<std::int64_t> count(static_cast<std::size_t>(bins), 0);
  for (double v : values) ++count[static_cast<std::size_t>(std::min(bins - 1, static_cast<int>((v - lo) / (hi - lo) * bins)))];
  const std::int64_t top = std::max<std::int64_t>(1, *std::max_element(count.begin(), count.end()));
  const double pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  const auto X = [&](double v) { return kLeft + (v - lo) / (hi - lo) * pw; };
  std::string s = "<svg id=\"" + id + "\" class=\"chart\" viewBox=\"0 0 " + std::to_string(kW) + " " + std::to_string(kH) +
                  "\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">\n";
  for (int k = 0; k <= 4; ++k) {  // y grid
    const double y = kTop + ph - ph * k / 4.0;
    s += "<line x1=\"" + fixed(kLeft, 1) + "\" x2=\"" + fixed(kW - kRight, 1) + "\" y1=\"" + fixed(y, 1) + "\" y2=\"" +
         fixed(y, 1) + "\" class=\"grid\"/><text x=\"" + fixed(kLeft - 6, 1) + "\" y=\"" + fixed(y + 4, 1) +
         "\" class=\"tick\" text-anchor=\"end\">" + compact(static_cast<double>(top) * k / 4.0) + "</text>\n";
  }
  for (int b = 0; b < bins; ++b) {
    const double x0 = kLeft + pw * b / bins, w = pw / bins, h = ph * static_cast<double>(count[b]) / static_cast<double>(top);
    s += "<rect class=\"bar\" x=\"" + fixed(x0 + 0.5, 1) + "\" y=\"" + fixed(kTop + ph - h, 1) + "\" width=\"" +
         fixed(std::max(0.5, w - 1), 1) + "\" height=\"" + fixed(h, 1) + "\" fill=\"" + color + "\"><title>" +
         compact(lo + (hi - lo) * b / bins) + " to " + compact(lo + (hi - lo) * (b + 1) / bins) + ": " +
         std::to_string(count[b]) + "</title></rect>\n";
  }
  for (int k = 0; k <= 5; ++k) {  // x ticks
    const double v = lo + (hi - lo) * k / 5;
    s += "<text x=\"" + fixed(X(v), 1) + "\" y=\"" + fixed(kTop + ph + 16, 1) + "\" class=\"tick\" text-anchor=\"middle\">" +
         compact(v) + "</text>\n";
  }
  for (std::size_t k = 0; k < markers.size(); ++k) {
    const Marker& m = markers[k];
    s += "<line class=\"marker\" x1=\"" + fixed(X(m.x), 1) + "\" x2=\"" + fixed(X(m.x), 1) + "\" y1=\"" + fixed(kTop, 1) +
         "\" y2=\"" + fixed(kTop + ph, 1) + "\" stroke=\"" + m.color + "\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/>" +
         "<text x=\"" + fixed(X(m.x) + (X(m.x) > kLeft + 0.7 * pw ? -4 : 4), 1) + "\" y=\"" +
         fixed(kTop + 12 + 14.0 * static_cast<double>(k), 1) + "\" class=\"label\" fill=\"" + m.color + "\"" +
         (X(m.x) > kLeft + 0.7 * pw ? " text-anchor=\"end\"" : "") + ">" + escape(m.label) + "</text>\n";
  }
  s += "<text x=\"" + fixed(kLeft + pw / 2, 1) + "\" y=\"" + fixed(kH - 8, 1) + "\" class=\"axis\" text-anchor=\"middle\">" +
       escape(xlabel) + "</text>\n</svg>\n";
  return s;
}

// Horizontal bars, one per (label, value); negative values extend left of zero.
std::string bars_svg(const std::string& id, const std::vector<std::pair<std::string, double>>& rows, const std::string& color) {
  const int row_h = 22, left = 160, right = 90;
  const int h = kTop + row_h * static_cast<int>(rows.size()) + 10;
  double lo = 0, hi = 0;
  for (const auto& [l, v] : rows) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!(hi > lo)) hi = lo + 1;
  const double pw = kW - left - right;
  const auto X = [&](double v) { return left + (v - lo) / (hi - lo) * pw; };
  std::string s = "<svg id=\"" + id + "\" class=\"chart\" viewBox=\"0 0 " + std::to_string(kW) + " " + std::to_string(h) +
                  "\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">\n";
  for (std::size_t k = 0; k < rows.size(); ++k) {
    const double y = kTop + row_h * static_cast<double>(k);
    const double x0 = X(std::min(0.0, rows[k].second)), x1 = X(std::max(0.0, rows[k].second));
    s += "<text x=\"" + std::to_string(left - 6) + "\" y=\"" + fixed(y + 15, 1) + "\" class=\"tick\" text-anchor=\"end\">" +
         escape(rows[k].first) + "</text><rect class=\"bar\" x=\"" + fixed(x0, 1) + "\" y=\"" + fixed(y + 3, 1) +
         "\" width=\"" + fixed(std::max(1.0, x1 - x0), 1) + "\" height=\"" + std::to_string(row_h - 6) + "\" fill=\"" +
         color + "\"><title>" + escape(rows[k].first) + ": " + fixed(rows[k].second) + "</title></rect><text x=\"" +
         fixed(x1 + 4, 1) + "\" y=\"" + fixed(y + 15, 1) + "\" class=\"tick\">" + compact(rows[k].second) + "</text>\n";
  }
  s += "<line x1=\"" + fixed(X(0), 1) + "\" x2=\"" + fixed(X(0), 1) + "\" y1=\"" + std::to_string(kTop) + "\" y2=\"" +
       std::to_string(h - 10) + "\" class=\"axisline\"/>\n</svg>\n";
  return s;
}

// Stacked bars: per scenario, how many accounts end in each status.
std::string migration_svg(const StressSpec& spec, const StressResult& r) {
  const auto n = static_cast<std::size_t>(r.scenarios), n_acc = r.equity.size();
  const int row_h = 24, left = 160, right = 20;
  const int h = kTop + row_h * static_cast<int>(n) + 30;
  const double pw = kW - left - right;
  static const char* colors[] = {"#4caf50", "#ffb300", "#e53935", "#757575"};
  static const char* names[] = {"healthy", "margin_call", "liquidatable", "error"};
  std::string s = "<svg id=\"migration\" class=\"chart\" viewBox=\"0 0 " + std::to_string(kW) + " " + std::to_string(h) +
                  "\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">\n";
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t c[4] = {0, 0, 0, 0};
    for (std::size_t a = 0; a < n_acc; ++a) ++c[std::min<std::uint8_t>(3, r.named_status[a * n + i])];
    const double y = kTop + row_h * static_cast<double>(i);
    s += "<text x=\"" + std::to_string(left - 6) + "\" y=\"" + fixed(y + 16, 1) + "\" class=\"tick\" text-anchor=\"end\">" +
         escape(spec.table.names[i]) + "</text>";
    double x = left;
    for (int k = 0; k < 4; ++k) {
      const double w = n_acc ? pw * static_cast<double>(c[k]) / static_cast<double>(n_acc) : 0;
      if (w <= 0) continue;
      s += "<rect class=\"bar\" x=\"" + fixed(x, 1) + "\" y=\"" + fixed(y + 3, 1) + "\" width=\"" + fixed(w, 1) +
           "\" height=\"" + std::to_string(row_h - 6) + "\" fill=\"" + colors[k] + "\"><title>" + names[k] + ": " +
           std::to_string(c[k]) + "</title></rect>";
      x += w;
    }
    s += "\n";
  }
  double x = left;
  for (int k = 0; k < 4; ++k) {
    s += "<rect x=\"" + fixed(x, 1) + "\" y=\"" + std::to_string(h - 22) + "\" width=\"12\" height=\"12\" fill=\"" + colors[k] +
         "\"/><text x=\"" + fixed(x + 16, 1) + "\" y=\"" + std::to_string(h - 12) + "\" class=\"tick\">" + names[k] + "</text>";
    x += 130;
  }
  return s + "\n</svg>\n";
}

}  // namespace

std::string stress_summary_json(const StressResult& r, const StressRunInfo& info) {
  json contributions = json::object();
  for (std::size_t u = 0; u < r.underlyings.size(); ++u) contributions[r.underlyings[u]] = r.contributions[u];
  json j = {{"scenarios", r.scenarios},
            {"confidence", info.confidence},
            {"vault", {{"var", r.vault_var}, {"es", r.vault_es}}},
            {"bad_debt", {{"mean", r.bad_debt_mean}, {"var", r.bad_debt_var}, {"es", r.bad_debt_es}}},
            {"contributions", contributions},
            {"device", r.device},
            {"seconds", r.seconds},
            {"source", info.source},
            {"horizon_days", info.horizon_days},
            {"tail_scenarios", r.tail},
            {"accounts", r.equity.size()}};
  if (info.source == "monte-carlo") j["seed"] = info.seed;
  return j.dump(2) + "\n";
}

std::string stress_report_html(const Book& book, const StressSpec& spec, const StressResult& r, const StressRunInfo& info) {
  const std::size_t n_acc = r.equity.size();
  const std::string pct = fixed(info.confidence * 100, info.confidence * 100 == std::floor(info.confidence * 100) ? 0 : 2);
  std::string h;
  h += "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>vaultrisk stress report</title>\n<style>\n"
       "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:780px;color:#222}\n"
       "h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}\n"
       ".meta{color:#666;font-size:13px}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}\n"
       ".card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:150px}.card b{display:block;font-size:20px}\n"
       ".card span{color:#666;font-size:12px}.chart{width:100%;height:auto;background:#fafafa;border:1px solid #eee}\n"
       ".grid{stroke:#e4e4e4}.tick{font-size:11px;fill:#555}.axis{font-size:12px;fill:#333}.label{font-size:12px;font-weight:600}\n"
       ".axisline{stroke:#999}table{border-collapse:collapse;font-size:13px;width:100%}td,th{border-bottom:1px solid #eee;padding:3px 6px;text-align:right}\n"
       "th:first-child,td:first-child{text-align:left}\n</style></head><body>\n";
  h += "<h1>Stress report</h1>\n<p class=\"meta\">" + escape(info.inputs) + "<br>" + std::to_string(n_acc) + " accounts, " +
       std::to_string(book.position_count()) + " positions, " + std::to_string(r.scenarios) + " scenarios (" +
       escape(info.source) + "), horizon " + num(info.horizon_days) + " days, confidence " + pct + "%; " +
       escape(r.device) + ", " + fixed(r.seconds, 2) + " s</p>\n";
  h += "<div class=\"cards\"><div class=\"card\"><span>Vault VaR " + pct + "%</span><b>" + compact(r.vault_var) +
       "</b></div><div class=\"card\"><span>Vault ES " + pct + "%</span><b>" + compact(r.vault_es) +
       "</b></div><div class=\"card\"><span>Bad debt, mean</span><b>" + compact(r.bad_debt_mean) +
       "</b></div><div class=\"card\"><span>Bad debt ES " + pct + "%</span><b>" + compact(r.bad_debt_es) + "</b></div></div>\n";

  h += "<h2>Vault PnL distribution</h2>\n";
  h += histogram_svg("pnl-histogram", r.vault_pnl, 40, "vault PnL per scenario (USD)",
                     {{-r.vault_var, "VaR " + compact(r.vault_var), "#e53935"}, {-r.vault_es, "ES " + compact(r.vault_es), "#8e24aa"}},
                     "#1e88e5");
  h += "<h2>Bad debt distribution</h2>\n<p class=\"meta\">Σ over accounts of max(0, −equity after) per scenario; " +
       std::to_string(std::count_if(r.bad_debt.begin(), r.bad_debt.end(), [](double x) { return x > 0; })) +
       " of " + std::to_string(r.scenarios) + " scenarios leave some.</p>\n";
  h += histogram_svg("bad-debt-histogram", r.bad_debt, 40, "bad debt per scenario (USD)",
                     {{r.bad_debt_var, "VaR " + compact(r.bad_debt_var), "#e53935"}, {r.bad_debt_es, "ES " + compact(r.bad_debt_es), "#8e24aa"}},
                     "#fb8c00");

  // Worst 20 accounts by ES.
  std::vector<std::size_t> order(n_acc);
  std::iota(order.begin(), order.end(), std::size_t{0});
  const std::size_t worst_n = std::min<std::size_t>(20, n_acc);
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(worst_n), order.end(),
                    [&](std::size_t a, std::size_t b) { return r.es[a] > r.es[b] || (r.es[a] == r.es[b] && a < b); });
  std::vector<std::pair<std::string, double>> worst;
  for (std::size_t k = 0; k < worst_n; ++k) worst.emplace_back("account " + std::to_string(book.account_id[order[k]]), r.es[order[k]]);
  h += "<h2>Worst " + std::to_string(worst_n) + " accounts (ES " + pct + "%)</h2>\n" + bars_svg("worst-accounts", worst, "#e53935");
  h += "<table><tr><th>account</th><th>equity</th><th>VaR</th><th>ES</th><th>worst scenario</th><th>worst PnL</th><th>insolvent in</th></tr>\n";
  for (std::size_t k = 0; k < worst_n; ++k) {
    const std::size_t a = order[k];
    h += "<tr><td>" + std::to_string(book.account_id[a]) + "</td><td>" + fixed(r.equity[a]) + "</td><td>" + fixed(r.var[a]) +
         "</td><td>" + fixed(r.es[a]) + "</td><td>" +
         (r.worst_scenario[a] < 0 ? std::string("none") : escape(scenario_name(spec, r.worst_scenario[a]))) + "</td><td>" +
         fixed(r.worst_pnl[a]) + "</td><td>" + std::to_string(r.insolvent_scenarios[a]) + "</td></tr>\n";
  }
  h += "</table>\n";

  std::vector<std::pair<std::string, double>> contrib;
  for (std::size_t u = 0; u < r.underlyings.size(); ++u) contrib.emplace_back(r.underlyings[u], r.contributions[u]);
  h += "<h2>Contributions to the vault ES by underlying</h2>\n<p class=\"meta\">Mean loss from each underlying's positions "
       "over the vault's " + std::to_string(r.tail) + " worst scenarios; they sum to the ES.</p>\n" +
       bars_svg("contributions", contrib, "#8e24aa");

  if (spec.source == StressSource::named) {
    h += "<h2>Status migration</h2>\n<p class=\"meta\">Statuses under the §4 margin at each shocked market. Today: ";
    std::size_t today[4] = {0, 0, 0, 0};
    for (std::uint8_t s : r.status) ++today[std::min<std::uint8_t>(3, s)];
    h += std::to_string(today[0]) + " healthy, " + std::to_string(today[1]) + " margin_call, " + std::to_string(today[2]) +
         " liquidatable.</p>\n" + migration_svg(spec, r);
    h += "<table><tr><th>scenario</th><th>vault PnL</th><th>bad debt</th><th>insolvent</th><th>liquidatable</th><th>healthy → liquidatable</th></tr>\n";
    const auto n = static_cast<std::size_t>(r.scenarios);
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t moved = 0;
      for (std::size_t a = 0; a < n_acc; ++a)
        moved += r.status[a] == static_cast<std::uint8_t>(AccountStatus::healthy) &&
                 r.named_status[a * n + i] == static_cast<std::uint8_t>(AccountStatus::liquidatable);
      h += "<tr><td>" + escape(spec.table.names[i]) + "</td><td>" + fixed(r.vault_pnl[i]) + "</td><td>" + fixed(r.bad_debt[i]) +
           "</td><td>" + std::to_string(r.insolvent[i]) + "</td><td>" + std::to_string(r.liquidatable[i]) + "</td><td>" +
           std::to_string(moved) + "</td></tr>\n";
    }
    h += "</table>\n";
  }
  h += "<p class=\"meta\">Full revaluation of every position in every scenario (SPEC §8). Written by vaultrisk stress.</p>\n</body></html>\n";
  return h;
}

void write_stress_outputs(const std::filesystem::path& dir, const Book& book, const StressSpec& spec, const StressResult& r,
                          const StressRunInfo& info) {
  const bool named = spec.source == StressSource::named;
  const auto n = static_cast<std::size_t>(r.scenarios);
  // Everything is formatted before anything is written, so a failure leaves no partial output.
  const std::string summary = stress_summary_json(r, info);
  const std::string report = stress_report_html(book, spec, r, info);
  std::filesystem::create_directories(dir);
  const auto field = [](std::string& s, auto x) {  // ",<x>"
    s += ',';
    append_number(s, x);
  };
  write_rows_atomic(dir / "scenarios.csv",
                    std::string("scenario,name,vault_pnl,bad_debt,insolvent_accounts") + (named ? ",liquidatable_accounts\n" : "\n"), n,
                    [&](std::size_t i, std::string& s) {
                      append_number(s, static_cast<std::uint64_t>(i));
                      s += ',';
                      s += scenario_name(spec, static_cast<std::int64_t>(i));
                      field(s, r.vault_pnl[i]);
                      field(s, r.bad_debt[i]);
                      field(s, r.insolvent[i]);
                      if (named) field(s, r.liquidatable[i]);
                      s += '\n';
                    });
  std::string header = "account,equity,var,es,worst_scenario,worst_pnl,insolvent_scenarios";
  if (named)
    for (const std::string& name : spec.table.names) header += ",pnl_" + name + ",status_" + name;
  write_rows_atomic(dir / "accounts.csv", header + "\n", r.equity.size(), [&](std::size_t a, std::string& s) {
    append_number(s, book.account_id[a]);
    field(s, r.equity[a]);
    field(s, r.var[a]);
    field(s, r.es[a]);
    field(s, r.worst_scenario[a]);
    field(s, r.worst_pnl[a]);
    field(s, r.insolvent_scenarios[a]);
    if (named)
      for (std::size_t i = 0; i < n; ++i) {
        field(s, r.named_pnl[a * n + i]);
        s += ',';
        s += status_name(r.named_status[a * n + i]);
      }
    s += '\n';
  });
  write_rows_atomic(dir / "summary.json", summary, 0, [](std::size_t, std::string&) {});
  write_rows_atomic(dir / "report.html", report, 0, [](std::size_t, std::string&) {});
}

}  // namespace vaultrisk::io
