// The CPU backend: the Thrust engine on the OpenMP device system.
#include <omp.h>
#include <thrust/system/omp/execution_policy.h>
#include <thrust/system/omp/vector.h>

#include "kernels/detail/thrust_backend.hpp"

namespace vaultrisk::detail {
namespace {

struct OmpSystem {
  template <class T>
  using vector = thrust::omp::vector<T>;
  auto policy() const { return thrust::omp::par; }
  void synchronize() const {}
  std::string name() const { return "cpu (OpenMP, " + std::to_string(omp_get_max_threads()) + " threads)"; }
};

}  // namespace

std::unique_ptr<Backend> make_omp_backend() { return std::make_unique<ThrustBackend<OmpSystem>>(); }

}  // namespace vaultrisk::detail
