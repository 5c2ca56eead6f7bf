// Open-addressing string -> index map for the loader's hot lookups: one probe
// sequence in a flat array instead of a node per key.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/checksum.hpp"

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
  static std::uint64_t hash(std::string_view s) { return checksum(s); }  // XXH3: 8 bytes a step
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

// The same for integer keys (account ids): one multiply to hash, no hash stored.
// Not one template with FlatIndex: 16-byte slots, and the multiply's middle bits
// as the slot, which walk sequential ids through the table at a fixed stride the
// prefetcher follows. A shared version (24-byte slots, a folded hash) loaded 1M
// accounts about 0.3 s slower.
class FlatIndex64 {
 public:
  explicit FlatIndex64(std::size_t expected) {
    std::size_t cap = 16;
    while (cap < expected * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
  }
  // Inserts `key` -> `value`; returns the existing value if the key is present, else -1.
  std::int32_t insert(std::uint64_t key, std::int32_t value) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    return place(key, value);
  }
  std::int32_t find(std::uint64_t key) const {
    for (std::size_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.value < 0) return -1;
      if (s.key == key) return s.value;
    }
  }

 private:
  struct Slot {
    std::uint64_t key = 0;
    std::int32_t value = -1;
  };
  std::size_t slot_of(std::uint64_t key) const {  // Fibonacci hashing: the high bits of key * 2^64/phi
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & mask_;
  }
  std::int32_t place(std::uint64_t key, std::int32_t value) {
    for (std::size_t i = slot_of(key);; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.value < 0) {
        s = Slot{key, value};
        ++size_;
        return -1;
      }
      if (s.key == key) return s.value;
    }
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.size() * 2, Slot{});
    mask_ = slots_.size() - 1;
    size_ = 0;
    for (const Slot& s : old)
      if (s.value >= 0) place(s.key, s.value);
  }
  std::vector<Slot> slots_;
  std::size_t mask_ = 0, size_ = 0;
};

}  // namespace vaultrisk::io
