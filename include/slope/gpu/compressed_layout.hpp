// The undocumented facts the in-place optimizer relies on, about cuSPARSELt's compressed
// fp16/bf16 buffer (true for cuSPARSELt 0.8 on the H200):
//  - it begins with the kept values in row-major order, ascending position within each group;
//  - its metadata holds each group's kept positions as core/sparselt_metadata.hpp lays them
//    out, so that a layer need not keep a copy of its own.
// Checked at start-up for every shape a layer uses; a layer whose shape fails a check falls
// back (to compressing from dense, or to positions of its own).
#pragma once

#include <cuda_runtime.h>

#include "slope/core/dtype.hpp"
#include "slope/gpu/sparse_engine.hpp"

namespace slope::gpu {

struct CompressedLayoutFacts {
  bool values_lead = false;               // the head of the buffer is the kept values
  bool metadata_holds_positions = false;  // a gather through its metadata picks out the kept values
};

// Compresses a random 2:4 m x k matrix without zeros among its kept values (through a
// standalone descriptor, as layers compress W) and compares with those kept values the
// buffer's head and what a gather through its metadata picks out of the matrix. Remembered
// per (cuSPARSELt version, GPU, shape, dtype) for the life of the process. Synchronises
// `stream`.
CompressedLayoutFacts compressed_layout_facts(const SparseLtContext& ctx, int64_t m, int64_t k, DType dtype,
                                              cudaStream_t stream);

inline bool compressed_values_lead(const SparseLtContext& ctx, int64_t m, int64_t k, DType dtype,
                                   cudaStream_t stream) {
  return compressed_layout_facts(ctx, m, k, dtype, stream).values_lead;
}

}  // namespace slope::gpu
