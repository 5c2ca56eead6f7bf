// XXH3-64 checksums and sealed files.
#include "core/checksum.hpp"

#include <xxhash.h>

#include "core/error.hpp"

namespace vaultrisk {

namespace {
constexpr std::string_view kFooterTag = "#xxh3=";
constexpr std::size_t kFooterSize = 6 + 16 + 1;
}  // namespace

std::uint64_t checksum(std::string_view bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

std::string checksum_hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t h = checksum(bytes);
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<std::size_t>(i)] = kHex[h & 15];
  return out;
}

std::string seal(std::string_view content) {
  std::string out;
  out.reserve(content.size() + kFooterSize);
  out.append(content);
  out.append(kFooterTag);
  out.append(checksum_hex(content));
  out.push_back('\n');
  return out;
}

std::string_view unseal(std::string_view sealed, const std::string& where) {
  if (sealed.size() < kFooterSize || sealed.substr(sealed.size() - kFooterSize, kFooterTag.size()) != kFooterTag ||
      sealed.back() != '\n')
    throw input_error(where + ": no checksum footer: the file is cut short or damaged (" + std::to_string(sealed.size()) +
                      " bytes)");
  const std::string_view content = sealed.substr(0, sealed.size() - kFooterSize);
  const std::string_view want = sealed.substr(sealed.size() - kFooterSize + kFooterTag.size(), 16);
  const std::string got = checksum_hex(content);
  if (want != got)
    throw input_error(where + ": checksum mismatch (stored " + std::string(want) + ", content " + got +
                      "): the file is damaged");
  return content;
}

}  // namespace vaultrisk
