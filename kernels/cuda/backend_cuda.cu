// The GPU backend: the same Thrust engine on the CUDA system, on its own stream.
#include <cuda_runtime.h>
#include <thrust/system/cuda/execution_policy.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/for_each.h>
#include <thrust/system/cuda/vector.h>

#include "core/error.hpp"
#include "kernels/detail/thrust_backend.hpp"
#include "kernels/detail/thrust_stress.hpp"

#if VR_HAVE_CURAND
#include <curand.h>
#endif

#define VR_CUDA_TRY(call)                                                                  \
  do {                                                                                     \
    const cudaError_t vr_err = (call);                                                     \
    if (vr_err != cudaSuccess)                                                             \
      throw ::vaultrisk::cuda_error(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                                    ": " #call ": " + cudaGetErrorString(vr_err));         \
  } while (0)

namespace vaultrisk::detail {
namespace {

struct CudaSystem {
  static constexpr std::int64_t kStressChunk = 8;  // accounts per chunk of stress totals
  static constexpr bool kStressRowsOnStack = false;  // the PnL matrix in device memory
  static constexpr bool kCpu = false;
  template <class T>
  using vector = thrust::cuda::vector<T>;

  CudaSystem() { VR_CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking)); }
  ~CudaSystem() { cudaStreamDestroy(stream); }
  CudaSystem(const CudaSystem&) = delete;
  CudaSystem& operator=(const CudaSystem&) = delete;

  auto policy() const { return thrust::cuda::par_nosync.on(stream); }
  template <class Alloc>
  auto policy(Alloc& temporaries) const {
    return thrust::cuda::par_nosync(temporaries).on(stream);
  }
  char* allocate_bytes(std::size_t n) const {
    void* p = nullptr;
    VR_CUDA_TRY(cudaMalloc(&p, n ? n : 1));  // only while the cache grows
    return static_cast<char*>(p);
  }
  void free_bytes(char* p) const { cudaFree(p); }
  void synchronize() const { VR_CUDA_TRY(cudaStreamSynchronize(stream)); }
  // Copies on our stream, ordered after the kernels before them (never the legacy
  // default stream); to_host returns once the bytes are there.
  template <class T>
  void to_device(const T* host, std::size_t n, T* device) const {
    if (n) VR_CUDA_TRY(cudaMemcpyAsync(device, host, n * sizeof(T), cudaMemcpyHostToDevice, stream));
    synchronize();  // the host buffer may go away after the call
  }
  template <class T>
  void to_host(const T* device, std::size_t n, T* host) const {
    if (n) VR_CUDA_TRY(cudaMemcpyAsync(host, device, n * sizeof(T), cudaMemcpyDeviceToHost, stream));
    synchronize();
  }
  std::string name() const {
    int dev = 0;
    cudaDeviceProp prop{};
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess)
      return "gpu (CUDA)";
    return std::string("gpu (CUDA, ") + prop.name + ")";
  }

  // n normals, values [offset, offset + n) of cuRAND's Philox stream of `seed`,
  // drawn by the device generator straight into device memory, on our stream.
  void normals(double* out, std::uint64_t seed, std::uint64_t offset, std::size_t n) const {
#if VR_HAVE_CURAND
    curandGenerator_t g{};
    if (curandCreateGenerator(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10) != CURAND_STATUS_SUCCESS)
      throw cuda_error("curandCreateGenerator failed");
    const bool ok = curandSetStream(g, stream) == CURAND_STATUS_SUCCESS &&
                    curandSetPseudoRandomGeneratorSeed(g, seed) == CURAND_STATUS_SUCCESS &&
                    curandSetGeneratorOffset(g, offset) == CURAND_STATUS_SUCCESS &&
                    curandGenerateNormalDouble(g, out, n, 0.0, 1.0) == CURAND_STATUS_SUCCESS;
    cudaStreamSynchronize(stream);  // the generator's memory is freed with it
    curandDestroyGenerator(g);
    if (!ok) throw cuda_error("cuRAND device generator failed");
#else
    (void)out, (void)seed, (void)offset, (void)n;
    throw unavailable_error("--monte-carlo needs cuRAND, and this build has none");
#endif
  }

  template <class F>
  void for_n(std::int64_t n, const F& f) const {
    thrust::for_each_n(policy(), thrust::counting_iterator<std::int64_t>(0), n, f);
  }

  cudaStream_t stream{};
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend() {
  if (cuda_device_count() == 0) throw unavailable_error("--device gpu: no CUDA device is present");
  return std::make_unique<ThrustBackend<CudaSystem>>();
}

std::unique_ptr<StressBackend> make_cuda_stress_backend() {
  if (cuda_device_count() == 0) throw unavailable_error("--device gpu: no CUDA device is present");
  return std::make_unique<ThrustStress<CudaSystem>>();
}

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

bool cuda_compiled() { return true; }

}  // namespace vaultrisk::detail
