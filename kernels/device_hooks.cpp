// Stand-ins for the CUDA backend in a build without CUDA: they say so.
#include "core/error.hpp"
#include "kernels/backend.hpp"
#include "kernels/stress_backend.hpp"

namespace vaultrisk::detail {

std::unique_ptr<Backend> make_cuda_backend() {
  throw unavailable_error("--device gpu: this build of vaultrisk has no CUDA backend (configure with -DVR_CUDA=ON)");
}
std::unique_ptr<StressBackend> make_cuda_stress_backend() {
  throw unavailable_error("--device gpu: this build of vaultrisk has no CUDA backend (configure with -DVR_CUDA=ON)");
}
int cuda_device_count() { return 0; }
bool cuda_compiled() { return false; }

}  // namespace vaultrisk::detail
