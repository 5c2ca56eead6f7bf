// Strict access to JSON objects with errors that name the JSON path.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace vaultrisk::io {

using json = nlohmann::json;

// Parses `text`; a syntax error names `source`, line and column.
json parse_json(std::string_view text, const std::string& source);

// Object at `path`, with no keys outside `allowed`.
const json& require_object(const json& j, const std::string& path,
                           std::initializer_list<std::string_view> allowed);
double require_number(const json& obj, const char* key, const std::string& path);
double number_or(const json& obj, const char* key, double fallback, const std::string& path);

}  // namespace vaultrisk::io
