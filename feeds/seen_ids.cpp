// SeenIds implementation.
#include "feeds/seen_ids.hpp"

namespace vaultrisk::feeds {

bool SeenIds::insert(const std::string& id) {
  if (!set_.insert(id).second) return false;
  open_.push_back(id);
  if (open_.size() == kChunk) {  // sealed: shared by views from now on, never changed
    sealed_.push_back(std::make_shared<const Chunk>(std::move(open_)));
    open_ = Chunk();
    open_.reserve(kChunk);
  }
  trim();
  return true;
}

void SeenIds::set_window(std::size_t window) {
  window_ = window < 1 ? 1 : window;
  trim();
}

void SeenIds::trim() {
  while (size() > window_) {
    const Chunk& c = oldest();
    set_.erase(c[skip_]);
    if (++skip_ < c.size()) continue;
    skip_ = 0;
    if (sealed_.empty()) open_.clear();
    else sealed_.pop_front();
  }
}

SeenIds::View SeenIds::view() const { return View{{sealed_.begin(), sealed_.end()}, open_, skip_}; }

}  // namespace vaultrisk::feeds
