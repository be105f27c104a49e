#include "slope/gpu/device_support.hpp"

#include <cuda_runtime.h>

#include "slope/gpu/cuda_check.hpp"

#ifndef SLOPE_CUDA_ARCHITECTURES
#error "the build names the CUDA architectures it compiles for (src/CMakeLists.txt)"
#endif

namespace slope::gpu {
namespace {

// Compiled like every other slope kernel: if this one has no code for the device, none has.
__global__ void ProbeKernel() {}

std::string capability_text(int compute_capability) {
  return std::to_string(compute_capability / 10) + "." + std::to_string(compute_capability % 10);
}

}  // namespace

const char* built_cuda_architectures() { return SLOPE_CUDA_ARCHITECTURES; }

bool kernel_runs_on_current_device(const void* kernel) {
  cudaFuncAttributes attributes{};
  const cudaError_t s = cudaFuncGetAttributes(&attributes, kernel);
  if (s == cudaErrorInvalidDeviceFunction || s == cudaErrorNoKernelImageForDevice) {
    cudaGetLastError();  // not a sticky error: clear it, so that the next call does not see it
    return false;
  }
  SLOPE_CHECK(s);
  return true;
}

bool slope_kernels_run_on_current_device() {
  return kernel_runs_on_current_device(reinterpret_cast<const void*>(&ProbeKernel));
}

std::string unsupported_device_reason(const std::string& gpu_name, int compute_capability, bool kernels_run,
                                      const std::string& built_for) {
  const std::string capability = capability_text(compute_capability);
  // cuSPARSELt's 2:4 products need the sparse tensor cores of Ampere (8.0) and later.
  if (compute_capability < 80)
    return gpu_name + " (compute capability " + capability +
           ") has no sparse tensor cores: slope needs compute capability 8.0 or newer";
  if (!kernels_run)
    return "this build of slope has no GPU code for " + gpu_name + " (compute capability " + capability +
           "; built for CUDA architectures " + built_for + "): rebuild with -DCMAKE_CUDA_ARCHITECTURES=" +
           std::to_string(compute_capability);
  return "";
}

}  // namespace slope::gpu
