// Market JSON reading and writing.
#include "io/market_json.hpp"

#include "core/error.hpp"
#include "io/csv_reader.hpp"
#include "io/number_format.hpp"

namespace vaultrisk::io {

std::vector<ExpirySlice> parse_expiries(const json& j, const std::string& path) {
  if (!j.is_array()) throw input_error(path + ": must be an array");
  std::vector<ExpirySlice> out;
  for (std::size_t e = 0; e < j.size(); ++e) {
    const std::string p = path + "[" + std::to_string(e) + "]";
    const json& slice = require_object(j[e], p, {"expiry", "svi"});
    const double expiry = require_number(slice, "expiry", p);
    if (!slice.contains("svi")) throw input_error(p + ".svi: missing");
    const std::string sp = p + ".svi";
    const json& svi = require_object(slice["svi"], sp, {"a", "b", "rho", "m", "sigma"});
    out.push_back(ExpirySlice{expiry, SviParams{require_number(svi, "a", sp), require_number(svi, "b", sp),
                                                require_number(svi, "rho", sp), require_number(svi, "m", sp),
                                                require_number(svi, "sigma", sp)}});
  }
  return out;
}

Market parse_market(std::string_view text, const std::string& source) {
  const json root = parse_json(text, source);
  require_object(root, source, {"time", "underlyings"});
  Market m;
  m.time = require_number(root, "time", source);
  if (!root.contains("underlyings")) throw input_error(source + ".underlyings: missing");
  const std::string up = source + ".underlyings";
  const json& unds = root["underlyings"];
  if (!unds.is_object()) throw input_error(up + ": must be an object");
  for (const auto& item : unds.items()) {
    const std::string p = up + "." + item.key();
    if (!valid_token(item.key(), 32, false)) throw input_error(p + ": underlying name must match [A-Za-z0-9_-]{1,32}");
    const json& u = require_object(item.value(), p, {"spot", "rate", "confidence", "expiries"});
    UnderlyingMarket um;
    um.spot = require_number(u, "spot", p);
    um.rate = number_or(u, "rate", 0.0, p);
    um.confidence = number_or(u, "confidence", 1.0, p);
    um.time = m.time;
    if (u.contains("expiries")) um.expiries = parse_expiries(u["expiries"], p + ".expiries");
    validate_underlying_market(um, p);
    m.underlyings.emplace(item.key(), std::move(um));
  }
  return m;
}

Market load_market(const std::filesystem::path& path) {
  return parse_market(read_file(path), path.filename().string());
}

std::string market_to_json(const Market& m) {
  std::string s = "{\"time\": ";
  append_number(s, m.time);
  s += ",\n \"underlyings\": {";
  bool first_u = true;
  for (const auto& [name, u] : m.underlyings) {
    s += first_u ? "\n  \"" : ",\n  \"";
    first_u = false;
    s += name + "\": {\"spot\": ";
    append_number(s, u.spot);
    s += ", \"rate\": ";
    append_number(s, u.rate);
    s += ", \"confidence\": ";
    append_number(s, u.confidence);
    s += ",\n    \"expiries\": [";
    for (std::size_t e = 0; e < u.expiries.size(); ++e) {
      const auto& x = u.expiries[e];
      s += e ? ",\n      {\"expiry\": " : "\n      {\"expiry\": ";
      append_number(s, x.expiry);
      const std::pair<const char*, double> f[] = {{"a", x.svi.a}, {"b", x.svi.b}, {"rho", x.svi.rho},
                                                  {"m", x.svi.m}, {"sigma", x.svi.sigma}};
      s += ", \"svi\": {";
      for (int k = 0; k < 5; ++k) {
        s += k ? ", \"" : "\"";
        s += f[k].first;
        s += "\": ";
        append_number(s, f[k].second);
      }
      s += "}}";
    }
    s += "]}";
  }
  s += "}}\n";
  return s;
}

}  // namespace vaultrisk::io
