// Stable in-place insertion sort: the right tool for the many tiny per-account
// segments of a book (std::stable_sort allocates a buffer on every call).
#pragma once

#include <iterator>
#include <utility>

namespace vaultrisk {

template <class It, class Less>
void insertion_sort(It first, It last, Less less) {
  for (It i = first; i != last; ++i) {
    auto v = std::move(*i);
    It j = i;
    for (; j != first && less(v, *std::prev(j)); --j) *j = std::move(*std::prev(j));
    *j = std::move(v);
  }
}

}  // namespace vaultrisk
