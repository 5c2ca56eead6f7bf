// The CPU backends: the Thrust engine and stress kernels on the OpenMP device
// system. Monte Carlo normals come from cuRAND's host generator when the build has
// cuRAND (the CUDA toolkit's libcurand; no GPU needed).
#include <omp.h>
#include <algorithm>
#include <cstdlib>
#include <new>

#include <thrust/system/omp/execution_policy.h>
#include <thrust/system/omp/vector.h>

#include "core/error.hpp"
#include "kernels/detail/thrust_backend.hpp"
#include "kernels/detail/thrust_stress.hpp"
#include "kernels/simd_pricing.hpp"

#if VR_HAVE_CURAND
#include <curand.h>
#endif

namespace vaultrisk::detail {
namespace {

#if VR_HAVE_CURAND
void curand_check(curandStatus_t s, const char* what) {
  if (s != CURAND_STATUS_SUCCESS) throw error(std::string("cuRAND ") + what + " failed (status " + std::to_string(s) + ")");
}
#endif

// cuRAND's host generator writes the normals straight into `out` (OpenMP vectors
// are host memory).
void host_normals(double* out, std::uint64_t seed, std::uint64_t offset, std::size_t n) {
#if VR_HAVE_CURAND
  if (n == 0) return;
  curandGenerator_t g{};
  curand_check(curandCreateGeneratorHost(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10), "curandCreateGeneratorHost");
  struct Destroy {
    curandGenerator_t g;
    ~Destroy() { curandDestroyGenerator(g); }
  } destroy{g};
  curand_check(curandSetPseudoRandomGeneratorSeed(g, seed), "curandSetPseudoRandomGeneratorSeed");
  curand_check(curandSetGeneratorOffset(g, offset), "curandSetGeneratorOffset");
  curand_check(curandGenerateNormalDouble(g, out, n, 0.0, 1.0), "curandGenerateNormalDouble");
#else
  (void)out, (void)seed, (void)offset, (void)n;
  throw unavailable_error("--monte-carlo needs cuRAND (libcurand from the CUDA toolkit), and this build has none: "
                          "install the toolkit at /usr/local/cuda and rebuild");
#endif
}


struct OmpSystem {
  static constexpr std::int64_t kStressChunk = 256;  // accounts per chunk of stress totals
  static constexpr bool kStressRowsOnStack = true;    // each account's PnL row summed on the stack
  static constexpr bool kCpu = true;                  // the four-lane builds (block pass, stress) may run here
  template <class T>
  using vector = thrust::omp::vector<T>;
  auto policy() const { return thrust::omp::par; }
  template <class Alloc>
  auto policy(Alloc& temporaries) const {
    return thrust::omp::par(temporaries);
  }
  char* allocate_bytes(std::size_t n) const {
    void* p = std::malloc(n ? n : 1);
    if (!p) throw std::bad_alloc();
    return static_cast<char*>(p);
  }
  void free_bytes(char* p) const { std::free(p); }
  void synchronize() const {}
  // The "device" is host memory.
  template <class T>
  void to_device(const T* host, std::size_t n, T* device) const {
    std::copy_n(host, n, device);
  }
  template <class T>
  void to_host(const T* device, std::size_t n, T* host) const {
    std::copy_n(device, n, host);
  }
  std::string name() const {
    return "cpu (OpenMP, " + std::to_string(omp_get_max_threads()) + " threads; pricing " + pricing_path() + ")";
  }
  // Stress work items differ in size (accounts hold different numbers of positions):
  // handed out dynamically, not in Thrust's static blocks.
  template <class F>
  void for_n(std::int64_t n, const F& f) const {
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t i = 0; i < n; ++i) f(i);
  }
  // n normals, values [offset, offset + n) of cuRAND's Philox stream of `seed`.
  void normals(double* out, std::uint64_t seed, std::uint64_t offset, std::size_t n) const {
    host_normals(out, seed, offset, n);
  }
};

}  // namespace

std::unique_ptr<Backend> make_omp_backend() { return std::make_unique<ThrustBackend<OmpSystem>>(); }
std::unique_ptr<StressBackend> make_omp_stress_backend() { return std::make_unique<ThrustStress<OmpSystem>>(); }

bool curand_available() { return VR_HAVE_CURAND != 0; }

std::vector<double> curand_host_normals(std::uint64_t seed, std::uint64_t offset, std::size_t n) {
  std::vector<double> out(n);
  host_normals(out.data(), seed, offset, n);
  return out;
}

}  // namespace vaultrisk::detail
