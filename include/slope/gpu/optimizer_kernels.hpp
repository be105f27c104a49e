// Multi-tensor kernels of the optimizer: one launch walks a table of chunks, each chunk a
// slice of one tensor, so that hundreds of small tensors cost one kernel.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "slope/core/adamw.hpp"
#include "slope/core/dtype.hpp"

namespace slope::gpu {

struct OptimizerTensor {
  void* param;        // 16-bit
  const void* grad;   // 16-bit
  float* m;
  float* v;
  int64_t count;
  int decay;          // weight decay applies
};

struct OptimizerChunk {
  int32_t tensor;
  int64_t begin;  // first element; a chunk holds up to kOptimizerChunk elements
};

constexpr int64_t kOptimizerChunk = 32768;

// Adds the sum of the squares of every gradient (times scale^2) to *sum (fp32, device).
void grad_square_sum(const OptimizerTensor* tensors, const OptimizerChunk* chunks, int chunk_count, float scale,
                     float* sum, DType dtype, cudaStream_t stream);

// One AdamW update of every tensor (see adamw_update_reference for the arithmetic).
void adamw_multi_tensor(const OptimizerTensor* tensors, const OptimizerChunk* chunks, int chunk_count,
                        const AdamWConfig& config, AdamWStepTerms terms, float grad_coef, DType dtype,
                        cudaStream_t stream);

}  // namespace slope::gpu
