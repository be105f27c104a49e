// The one undocumented fact the in-place optimizer relies on: cuSPARSELt's compressed
// fp16/bf16 buffer begins with the kept values in row-major order, ascending position within
// each group (true for cuSPARSELt 0.8 on the H200). Checked at start-up for every shape a
// layer uses; a layer whose shape fails the check falls back to compressing from dense.
#pragma once

#include <cuda_runtime.h>

#include "slope/core/dtype.hpp"
#include "slope/gpu/sparse_engine.hpp"

namespace slope::gpu {

// Compresses a random 2:4 m x k matrix without zeros among its kept values and compares the
// head of the buffer with the kept values. Remembered per (cuSPARSELt version, GPU, shape,
// dtype) for the life of the process. Synchronises `stream`.
bool compressed_values_lead(const SparseLtContext& ctx, int64_t m, int64_t k, DType dtype, cudaStream_t stream);

}  // namespace slope::gpu
