// The ids of the newest applied vault events, for idempotence (VaultState).
//
// Oldest first, in sealed chunks of kChunk ids that a snapshot shares rather than
// copies: taking a View copies at most one chunk's ids and a pointer per chunk, so a
// snapshot of a full window (a million ids) costs the engine thread microseconds,
// not the tens of milliseconds of copying every id.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

namespace vaultrisk::feeds {

class SeenIds {
 public:
  static constexpr std::size_t kChunk = 4096;
  using Chunk = std::vector<std::string>;

  // The ids as they were when the view was taken, whatever happens to the window
  // after: sealed chunks are never changed, only dropped.
  struct View {
    std::vector<std::shared_ptr<const Chunk>> sealed;
    Chunk open;
    std::size_t skip = 0;  // ids of the oldest chunk (sealed.front(), else open) already dropped

    template <class F>
    void for_each(F&& f) const {
      std::size_t from = skip;
      for (const auto& c : sealed) {
        for (std::size_t i = from; i < c->size(); ++i) f((*c)[i]);
        from = 0;
      }
      for (std::size_t i = from; i < open.size(); ++i) f(open[i]);
    }
    std::vector<std::string> to_vector() const {
      std::vector<std::string> out;
      for_each([&](const std::string& id) { out.push_back(id); });
      return out;
    }
  };

  explicit SeenIds(std::size_t window) : window_(window < 1 ? 1 : window) {}

  bool contains(const std::string& id) const { return set_.count(id) != 0; }
  // False when the id was already in the window.
  bool insert(const std::string& id);
  // Keeps the newest `window` ids (at least 1).
  void set_window(std::size_t window);
  std::size_t size() const { return sealed_.size() * kChunk + open_.size() - skip_; }  // sealed chunks are full
  View view() const;

 private:
  void trim();
  const Chunk& oldest() const { return sealed_.empty() ? open_ : *sealed_.front(); }

  std::unordered_set<std::string> set_;
  std::deque<std::shared_ptr<const Chunk>> sealed_;
  Chunk open_;
  std::size_t skip_ = 0;  // ids of the oldest chunk already dropped
  std::size_t window_;
};

}  // namespace vaultrisk::feeds
