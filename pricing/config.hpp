// Host/device annotation used by every function shared between g++ and nvcc.
#pragma once

#if defined(__CUDACC__)
#define VR_HD __host__ __device__
#else
#define VR_HD
#endif

#define VR_HD_INLINE VR_HD inline

namespace vaultrisk {
// Classification that behaves the same under g++ and nvcc, host and device.
VR_HD_INLINE bool is_nan(double x) { return x != x; }
VR_HD_INLINE bool is_finite(double x) { return (x - x) == 0.0; }
}  // namespace vaultrisk
