#include "slope/gpu/cuda_check.hpp"

#include <cusparseLt.h>

#include <string>

#include "slope/core/error.hpp"

namespace slope::gpu {

void throw_status(const char* library, const char* status_name, const char* call, const char* file,
                  int line) {
  std::string where = file;
  const auto slash = where.find_last_of('/');
  if (slash != std::string::npos) where = where.substr(slash + 1);
  throw Error(ErrorKind::kCuda, std::string(library) + " call " + call + " failed with " + status_name +
                                    " (" + where + ":" + std::to_string(line) + ")");
}

namespace {

// cublasGetStatusName lives in libcublas, which slope does not otherwise need.
const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "cuBLAS status";
  }
}

}  // namespace

void check(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS) throw_status("cuBLAS", cublas_status_name(s), call, file, line);
}

void check(cusparseStatus_t s, const char* call, const char* file, int line) {
  if (s != CUSPARSE_STATUS_SUCCESS) throw_status("cuSPARSELt", cusparseLtGetErrorName(s), call, file, line);
}

void check_last_launch(const char* kernel, const char* file, int line) {
  const cudaError_t s = cudaGetLastError();
  if (s != cudaSuccess) throw_status("CUDA", cudaGetErrorName(s), kernel, file, line);
}

}  // namespace slope::gpu
