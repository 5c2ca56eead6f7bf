// Methodology JSON: every key optional; a per-underlying block overrides the global one.
#include "io/methodology_json.hpp"

#include "core/error.hpp"
#include "io/csv_reader.hpp"
#include "io/json_fields.hpp"
#include "io/number_format.hpp"

namespace vaultrisk::io {

namespace {

VolMode parse_vol_mode(const json& j, const std::string& path) {
  if (j == "up") return VolMode::up;
  if (j == "none") return VolMode::none;
  if (j == "down") return VolMode::down;
  throw input_error(path + ": must be \"up\", \"none\" or \"down\"");
}

const char* vol_mode_name(VolMode v) {
  return v == VolMode::up ? "up" : v == VolMode::down ? "down" : "none";
}

// Applies the keys present in `j` on top of `m`.
void apply(const json& j, const std::string& path, UnderlyingMethodology& m, bool allow_underlyings) {
  if (allow_underlyings)
    require_object(j, path, {"scenarios", "vol_shock", "contingency", "mm_scan", "im_scan", "underlyings"});
  else
    require_object(j, path, {"scenarios", "vol_shock", "contingency", "mm_scan", "im_scan"});
  if (j.contains("scenarios")) {
    const json& arr = j["scenarios"];
    const std::string sp = path + ".scenarios";
    if (!arr.is_array()) throw input_error(sp + ": must be an array");
    m.scenarios.clear();
    for (std::size_t k = 0; k < arr.size(); ++k) {
      const std::string p = sp + "[" + std::to_string(k) + "]";
      const json& s = require_object(arr[k], p, {"spot", "vol", "damp"});
      if (!s.contains("vol")) throw input_error(p + ".vol: missing");
      m.scenarios.push_back({require_number(s, "spot", p), parse_vol_mode(s["vol"], p + ".vol"),
                             number_or(s, "damp", 1.0, p)});
    }
  }
  if (j.contains("vol_shock")) {
    const std::string p = path + ".vol_shock";
    const json& v = require_object(j["vol_shock"], p,
                                   {"ref_horizon", "min_tte", "p_short", "p_long", "up_k", "down_k", "up_floor"});
    auto& s = m.vol_shock;
    s.ref_horizon = number_or(v, "ref_horizon", s.ref_horizon, p);
    s.min_tte = number_or(v, "min_tte", s.min_tte, p);
    s.p_short = number_or(v, "p_short", s.p_short, p);
    s.p_long = number_or(v, "p_long", s.p_long, p);
    s.up_k = number_or(v, "up_k", s.up_k, p);
    s.down_k = number_or(v, "down_k", s.down_k, p);
    s.up_floor = number_or(v, "up_floor", s.up_floor, p);
  }
  if (j.contains("contingency")) {
    const std::string p = path + ".contingency";
    const json& c = require_object(j["contingency"], p, {"mm_perp", "mm_short", "im_perp", "im_short", "low_confidence"});
    m.mm_perp = number_or(c, "mm_perp", m.mm_perp, p);
    m.mm_short = number_or(c, "mm_short", m.mm_short, p);
    m.im_perp = number_or(c, "im_perp", m.im_perp, p);
    m.im_short = number_or(c, "im_short", m.im_short, p);
    m.low_confidence = number_or(c, "low_confidence", m.low_confidence, p);
  }
  m.mm_scan = number_or(j, "mm_scan", m.mm_scan, path);
  m.im_scan = number_or(j, "im_scan", m.im_scan, path);
  validate_methodology(m, path);
}

}  // namespace

Methodology parse_methodology(std::string_view text, const std::string& source) {
  const json root = parse_json(text, source);
  Methodology m = default_methodology();
  apply(root, source, m.base, true);
  if (root.contains("underlyings")) {
    const std::string up = source + ".underlyings";
    if (!root["underlyings"].is_object()) throw input_error(up + ": must be an object");
    for (const auto& item : root["underlyings"].items()) {
      if (!valid_token(item.key(), 32, false)) throw input_error(up + "." + item.key() + ": invalid underlying name");
      UnderlyingMethodology um = m.base;
      apply(item.value(), up + "." + item.key(), um, false);
      m.overrides.emplace(item.key(), std::move(um));
    }
  }
  return m;
}

Methodology load_methodology(const std::filesystem::path& path) {
  return parse_methodology(read_file(path), path.filename().string());
}

std::string methodology_to_json(const Methodology& meth) {
  const UnderlyingMethodology& m = meth.base;
  std::string s = "{\n  \"scenarios\": [";
  for (std::size_t k = 0; k < m.scenarios.size(); ++k) {
    s += k ? ",\n    {\"spot\": " : "\n    {\"spot\": ";
    append_number(s, m.scenarios[k].spot);
    s += ", \"vol\": \"";
    s += vol_mode_name(m.scenarios[k].vol);
    s += "\", \"damp\": ";
    append_number(s, m.scenarios[k].damp);
    s += "}";
  }
  auto kv = [&](const char* k, double v, bool last = false) {
    s += "\"";
    s += k;
    s += "\": ";
    append_number(s, v);
    if (!last) s += ", ";
  };
  s += "\n  ],\n  \"vol_shock\": {";
  const auto& v = m.vol_shock;
  kv("ref_horizon", v.ref_horizon), kv("min_tte", v.min_tte), kv("p_short", v.p_short), kv("p_long", v.p_long);
  kv("up_k", v.up_k), kv("down_k", v.down_k), kv("up_floor", v.up_floor, true);
  s += "},\n  \"contingency\": {";
  kv("mm_perp", m.mm_perp), kv("mm_short", m.mm_short), kv("im_perp", m.im_perp), kv("im_short", m.im_short);
  kv("low_confidence", m.low_confidence, true);
  s += "},\n  ";
  kv("mm_scan", m.mm_scan);
  kv("im_scan", m.im_scan, true);
  s += ",\n  \"underlyings\": {}\n}\n";
  return s;
}

}  // namespace vaultrisk::io
