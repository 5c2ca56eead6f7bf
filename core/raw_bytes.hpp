// A vector's elements as raw bytes (the host's own byte order), appended to a
// binary durable file's content: epoch captures, partition snapshots.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

namespace vaultrisk {

template <class T>
void append_raw(std::string& out, const std::vector<T>& v) {
  static_assert(std::is_trivially_copyable_v<T>);
  out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

}  // namespace vaultrisk
