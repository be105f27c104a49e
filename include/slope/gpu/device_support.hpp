// Whether this build of slope can run on a GPU: one with sparse tensor cores, for which the
// build holds GPU code. Checked before any GPU work (require_cuda_device), so that an A100
// running an sm_90 build, or a GPU without sparse tensor cores, gets one line saying so
// instead of a failed kernel launch or cuSPARSELt call later.
#pragma once

#include <string>

namespace slope::gpu {

// The CUDA architectures this build's GPU code was compiled for, as CMake named them, comma
// separated (e.g. "90" or "80,90").
const char* built_cuda_architectures();

// Whether `kernel` (the address of a __global__ function) has code the current device runs:
// machine code of its architecture, or PTX the driver compiles for it.
bool kernel_runs_on_current_device(const void* kernel);

// Whether slope's own kernels run on the current device.
bool slope_kernels_run_on_current_device();

// Why slope cannot run on a GPU of this name and compute capability (e.g. 86), or "" when it
// can. `kernels_run`: slope_kernels_run_on_current_device() on it; `built_for`: the
// architectures of the build.
std::string unsupported_device_reason(const std::string& gpu_name, int compute_capability, bool kernels_run,
                                      const std::string& built_for);

}  // namespace slope::gpu
