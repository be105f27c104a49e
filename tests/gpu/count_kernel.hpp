#pragma once

#include <cuda_runtime.h>

namespace slope::testing {

// Adds one to *counter (device memory) on `stream`.
cudaError_t launch_count(int* counter, cudaStream_t stream);

}  // namespace slope::testing
