// One status check for CUDA, cuBLAS and cuSPARSELt (ggml's habit): a failing call becomes a
// slope::Error(kCuda) that names the call, the status and the source line.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cusparse.h>

namespace slope::gpu {

[[noreturn]] void throw_status(const char* library, const char* status_name, const char* call,
                               const char* file, int line);

inline void check(cudaError_t s, const char* call, const char* file, int line) {
  if (s != cudaSuccess) throw_status("CUDA", cudaGetErrorName(s), call, file, line);
}
void check(cublasStatus_t s, const char* call, const char* file, int line);
void check(cusparseStatus_t s, const char* call, const char* file, int line);

// Throws if the last kernel launch failed (bad configuration, missing kernel image).
void check_last_launch(const char* kernel, const char* file, int line);

}  // namespace slope::gpu

#define SLOPE_CHECK(call) ::slope::gpu::check((call), #call, __FILE__, __LINE__)
#define SLOPE_CHECK_LAUNCH(kernel) ::slope::gpu::check_last_launch(kernel, __FILE__, __LINE__)
