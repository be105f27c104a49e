// Whether slope can run on a GPU (device_support.hpp): the reasons it gives where it cannot,
// checked on any machine, and the kernel-image check on the GPU at hand.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include "gpu_test.hpp"
#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/device_info.hpp"
#include "slope/gpu/device_support.hpp"
#include "sm80_only_kernel.hpp"

namespace slope::testing {
namespace {

TEST(DeviceSupport, GpuWithSparseTensorCoresAndCodeForItIsSupported) {
  EXPECT_EQ(gpu::unsupported_device_reason("NVIDIA H200", 90, true, "90"), "");
  EXPECT_EQ(gpu::unsupported_device_reason("NVIDIA A100-SXM4-80GB", 80, true, "80,90"), "");
}

TEST(DeviceSupport, GpuWithoutSparseTensorCoresIsNamedWithItsCapability) {
  const std::string why = gpu::unsupported_device_reason("Tesla T4", 75, true, "75");
  EXPECT_EQ(why, "Tesla T4 (compute capability 7.5) has no sparse tensor cores: slope needs compute capability 8.0 "
                 "or newer");
}

TEST(DeviceSupport, BuildWithoutCodeForTheGpuSaysHowToRebuild) {
  const std::string why = gpu::unsupported_device_reason("NVIDIA A100-SXM4-80GB", 80, false, "90");
  EXPECT_EQ(why, "this build of slope has no GPU code for NVIDIA A100-SXM4-80GB (compute capability 8.0; built for "
                 "CUDA architectures 90): rebuild with -DCMAKE_CUDA_ARCHITECTURES=80");
  EXPECT_NE(gpu::unsupported_device_reason("NVIDIA RTX PRO 6000", 120, false, "90").find("=120"), std::string::npos);
}

TEST(DeviceSupport, BuiltArchitecturesAreNamedWithoutCMakesSeparator) {
  const std::string built = gpu::built_cuda_architectures();
  EXPECT_FALSE(built.empty());
  EXPECT_EQ(built.find(';'), std::string::npos) << built;
}

using DeviceSupportGpu = GpuTest;

TEST_F(DeviceSupportGpu, ThisBuildRunsOnThisGpu) {
  EXPECT_TRUE(gpu::slope_kernels_run_on_current_device());
  EXPECT_NO_THROW(gpu::require_cuda_device());
}

TEST_F(DeviceSupportGpu, KernelWithoutCodeForThisGpuIsFoundOutAndLeavesNoError) {
  int device = 0, major = 0;
  SLOPE_CHECK(cudaGetDevice(&device));
  SLOPE_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  // sm_80 machine code runs on compute capability 8.x only (the H200 is 9.0).
  EXPECT_EQ(gpu::kernel_runs_on_current_device(sm80_only_kernel()), major == 8);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // the failed lookup is not left behind
  EXPECT_TRUE(gpu::slope_kernels_run_on_current_device());
}

}  // namespace
}  // namespace slope::testing
