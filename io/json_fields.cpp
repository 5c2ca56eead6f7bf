// JSON helpers.
#include "io/json_fields.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace vaultrisk::io {

namespace {
std::string line_col(std::string_view text, std::size_t at) {
  at = std::min(at, text.size());
  const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n');
  const auto nl = at == 0 ? std::string_view::npos : text.rfind('\n', at - 1);
  const auto col = at - (nl == std::string_view::npos ? 0 : nl + 1) + 1;
  return std::to_string(line) + ":" + std::to_string(col);
}
}  // namespace

json parse_json(std::string_view text, const std::string& source) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    if (auto p = what.find("syntax error"); p != std::string::npos) what = what.substr(p);
    throw input_error(source + ":" + line_col(text, e.byte > 0 ? e.byte - 1 : 0) + ": invalid JSON: " + what);
  } catch (const json::exception& e) {
    // e.g. "number overflow parsing '1e999'": no position given, so find the literal.
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    std::string where = source;
    const auto q1 = what.find('\''), q2 = what.rfind('\'');
    if (q1 != std::string::npos && q2 > q1) {
      const auto at = text.find(what.substr(q1 + 1, q2 - q1 - 1));
      if (at != std::string_view::npos) where += ":" + line_col(text, at);
    }
    throw input_error(where + ": invalid JSON: " + what);
  }
}

const json& require_object(const json& j, const std::string& path,
                           std::initializer_list<std::string_view> allowed) {
  if (!j.is_object()) throw input_error(path + ": must be an object");
  for (const auto& item : j.items())
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end())
      throw input_error(path + "." + item.key() + ": unknown field");
  return j;
}

double require_number(const json& obj, const char* key, const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end()) throw input_error(path + "." + key + ": missing");
  if (!it->is_number()) throw input_error(path + "." + key + ": must be a number");
  const double x = it->get<double>();
  if (!std::isfinite(x)) throw input_error(path + "." + key + ": must be finite");
  return x;
}

double number_or(const json& obj, const char* key, double fallback, const std::string& path) {
  return obj.contains(key) ? require_number(obj, key, path) : fallback;
}

}  // namespace vaultrisk::io
