// Open-addressing string -> index map for the loader's hot lookups: one probe
// sequence in a flat array instead of a node per key.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace vaultrisk::io {

class FlatIndex {
 public:
  explicit FlatIndex(std::size_t expected) {
    std::size_t cap = 16;
    while (cap < expected * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
  }
  // Inserts `key` -> `value`; returns the existing value if the key is present, else -1.
  // `key` must outlive the index.
  std::int32_t insert(std::string_view key, std::int32_t value) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    return place(key, hash(key), value);
  }
  std::int32_t find(std::string_view key) const {
    const std::uint64_t h = hash(key);
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.value < 0) return -1;
      if (s.hash == h && s.key == key) return s.value;
    }
  }

 private:
  struct Slot {
    std::uint64_t hash = 0;
    std::string_view key;
    std::int32_t value = -1;
  };
  static std::uint64_t hash(std::string_view s) {  // FNV-1a, then a mixer for the low bits
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h ^ (h >> 29);
  }
  std::int32_t place(std::string_view key, std::uint64_t h, std::int32_t value) {
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.value < 0) {
        s = Slot{h, key, value};
        ++size_;
        return -1;
      }
      if (s.hash == h && s.key == key) return s.value;
    }
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.size() * 2, Slot{});
    mask_ = slots_.size() - 1;
    size_ = 0;
    for (const Slot& s : old)
      if (s.value >= 0) place(s.key, s.hash, s.value);
  }
  std::vector<Slot> slots_;
  std::size_t mask_ = 0, size_ = 0;
};

}  // namespace vaultrisk::io
