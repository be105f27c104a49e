// slope's own tensor-core GEMM for the two products of a low-rank adapter, where cuBLASLt
// leaves bandwidth unused: C (m x n) = A (m x k) B^T (B: n x k), all row-major, both
// operands contiguous along k, fp16/bf16 with fp32 accumulation.
//  - the thin product T = X L (n = rank <= 128, long k): a few output tiles, so k is split
//    over a thread-block cluster and the partial sums are added in distributed shared
//    memory, deterministically, with no workspace and no second kernel;
//  - the wide product Y = T R (k = rank, long n): write bound, so each block stages its
//    tile in shared memory and writes whole 16-byte chunks of C's rows.
// One kernel serves both: 128-row blocks, a 4-stage cp.async pipeline of 64-wide k slices
// (swizzled against bank conflicts) feeding mma.sync through ldmatrix.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "slope/core/dtype.hpp"

namespace slope::gpu {

struct LowRankGemmShape {
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;  // in elements; multiples of 8 (16-byte rows)
  DType dtype = DType::kF16;
};

// How the kernel covers a shape: block width along n (a multiple of 16, at most 128) and
// the number of blocks in a cluster that split k (1, 2, 4 or 8).
struct LowRankGemmPlan {
  int block_n = 0;
  int k_splits = 0;
  bool direct_store = false;  // k_splits == 1 only: registers straight to C, no staging
};

// The plan the library uses: the narrowest block that covers n in one (n <= 128), else
// 128; k split while the grid stays within one wave of `sm_count` blocks.
LowRankGemmPlan plan_low_rank_gemm(const LowRankGemmShape& shape, int sm_count);

// Throws kInvalidInput naming the problem: an empty shape, n, k or a leading dimension not
// a multiple of 8, a leading dimension below the row length, a block width or split count
// the kernel does not have.
void validate(const LowRankGemmShape& shape, const LowRankGemmPlan& plan);

// C = A B^T on `stream`. Pointers 16-byte aligned. C's elements outside m x n are untouched.
void low_rank_gemm(const LowRankGemmShape& shape, const LowRankGemmPlan& plan, const void* a, const void* b, void* c,
                   cudaStream_t stream);

}  // namespace slope::gpu
