// `slope memcheck`: allocates the real state of N decoder layers of a zoo model on the GPU
// (SLoPe training: compressed W and W^{R,C}, W's 2:4 indices, kept gradient, fp32 AdamW
// moments of the kept half, full state for biases and norms, the shared gradient scratch;
// inference: compressed W, fp16 vectors) and compares the bytes slope allocated with the
// memory model (`slope memory --protocol exact`).
#pragma once

#include <string>
#include <vector>

#include "slope/core/table.hpp"
#include "slope/gpu/dense_gemm.hpp"
#include "slope/gpu/sparse_engine.hpp"
#include "slope/model/model_config.hpp"

namespace slope {

struct MemoryCheckOptions {
  std::vector<ModelConfig> models;
  int64_t layers = 2;
};

// Columns: model, layers, mode, measured_bytes, model_bytes, rel_diff, cuda_bytes (the
// driver's view: cudaMemGetInfo difference, which rounds allocations up to pages).
Table run_memory_check_experiment(const MemoryCheckOptions& options, gpu::SparseEngine& engine,
                                  gpu::DenseGemmCache& dense);

}  // namespace slope
