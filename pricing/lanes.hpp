// The lane operations the pricing formulas are written in, for one double. The
// formulas are templates over the value type T (and its mask M), so the same source
// runs on one double (host and device: these overloads) and on a pack of doubles
// (pricing/simd.hpp, host only). Branches become selects: every lane computes both
// sides, and `all_of` keeps the scalar early exits.
#pragma once

#include "pricing/config.hpp"

namespace vaultrisk {

VR_HD_INLINE double select(bool c, double a, double b) { return c ? a : b; }
VR_HD_INLINE bool all_of(bool c) { return c; }

}  // namespace vaultrisk
