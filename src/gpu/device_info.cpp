#include "slope/gpu/device_info.hpp"

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cusparseLt.h>
#include <nvrtc.h>

#include <array>
#include <cstdio>
#include <memory>
#include <sstream>

#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/device_support.hpp"

namespace slope::gpu {
namespace {

std::string version_string(int v) {  // CUDA encodes 13000 as 13.0
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

// The kernel driver's own version (e.g. 580.159.03), read the way nvidia-smi reports it.
std::string kernel_driver_version() {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen("/proc/driver/nvidia/version", "r"), &std::fclose);
  if (!f) return "";
  std::array<char, 512> line{};
  if (!std::fgets(line.data(), line.size(), f.get())) return "";
  const std::string text(line.data());
  // "NVRM version: NVIDIA UNIX [Open ]Kernel Module [for x86_64]  580.159.03  Release Build ..."
  // The version is the first token after "Module" made of digits and dots only.
  std::istringstream tokens(text.substr(text.find("Module") == std::string::npos ? 0 : text.find("Module")));
  std::string token;
  while (tokens >> token)
    if (token.find('.') != std::string::npos && token.find_first_not_of("0123456789.") == std::string::npos)
      return token;
  return "";
}

}  // namespace

bool cuda_device_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

void require_cuda_device() {
  int count = 0;
  const cudaError_t s = cudaGetDeviceCount(&count);
  if (s != cudaSuccess || count == 0)
    throw Error(ErrorKind::kUnsupported, std::string("no usable CUDA GPU (") +
                                             (s != cudaSuccess ? cudaGetErrorString(s) : "no devices") + ")");
  int device = 0;
  SLOPE_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  SLOPE_CHECK(cudaGetDeviceProperties(&prop, device));
  const std::string why = unsupported_device_reason(prop.name, prop.major * 10 + prop.minor,
                                                    slope_kernels_run_on_current_device(), built_cuda_architectures());
  if (!why.empty()) throw Error(ErrorKind::kUnsupported, why);
}

DeviceInfo query_device_info() {
  require_cuda_device();
  int device = 0;
  SLOPE_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  SLOPE_CHECK(cudaGetDeviceProperties(&prop, device));
  DeviceInfo info;
  info.name = prop.name;
  info.sm_count = prop.multiProcessorCount;
  info.compute_capability = prop.major * 10 + prop.minor;
  info.l2_bytes = prop.l2CacheSize;
  info.memory_bytes = static_cast<long long>(prop.totalGlobalMem);
  int driver = 0, runtime = 0;
  SLOPE_CHECK(cudaDriverGetVersion(&driver));
  SLOPE_CHECK(cudaRuntimeGetVersion(&runtime));
  const std::string kernel = kernel_driver_version();
  info.driver = kernel.empty() ? "CUDA " + version_string(driver) : kernel + " (CUDA " + version_string(driver) + ")";
  info.runtime = version_string(runtime);
  info.cusparselt = loaded_cusparselt_release().str();
  const size_t cublas = cublasLtGetVersion();
  int nvrtc_major = 0, nvrtc_minor = 0;
  if (nvrtcVersion(&nvrtc_major, &nvrtc_minor) == NVRTC_SUCCESS)
    info.nvrtc = std::to_string(nvrtc_major) + "." + std::to_string(nvrtc_minor);
  info.cublas = std::to_string(cublas / 10000) + "." + std::to_string((cublas / 100) % 100) + "." +
                std::to_string(cublas % 100);
  return info;
}

LibraryRelease built_cusparselt_release() {
  return {CUSPARSELT_VER_MAJOR, CUSPARSELT_VER_MINOR, CUSPARSELT_VER_PATCH};
}

LibraryRelease loaded_cusparselt_release() {
  LibraryRelease r;
  SLOPE_CHECK(cusparseLtGetProperty(MAJOR_VERSION, &r.major));
  SLOPE_CHECK(cusparseLtGetProperty(MINOR_VERSION, &r.minor));
  SLOPE_CHECK(cusparseLtGetProperty(PATCH_LEVEL, &r.patch));
  return r;
}

void append_device_metadata(Metadata& meta, const DeviceInfo& info) {
  meta.emplace_back("gpu", info.name);
  meta.emplace_back("sm_count", std::to_string(info.sm_count));
  meta.emplace_back("driver", info.driver);
  meta.emplace_back("cuda_runtime", info.runtime);
  meta.emplace_back("cusparselt", info.cusparselt);
  meta.emplace_back("cublaslt", info.cublas);
  meta.emplace_back("nvrtc", info.nvrtc);
}

}  // namespace slope::gpu
