// slope's kernel for the adapter's thin product T = X L: C (m x n) = A (m x k) B^T (B: n x k),
// row-major, both operands contiguous along k, n <= 128, k long; fp16/bf16 in, fp32
// accumulation. Bound by reading A, which cuBLASLt streams at about half the copy bandwidth
// at these shapes because it leaves few blocks per SM.
//
// How: 64-row blocks of 8 warps (4 along m, 2 splitting each 64-wide k slice), a 4-stage
// cp.async pipeline into mma.sync; k split over the grid so that about two blocks share
// each SM. Each block writes its fp32 partial tile to a workspace; the last block of a row
// range to arrive (an atomic counter) adds the partials in split order and writes C, so
// the result is deterministic and one kernel does it all. No thread-block clusters: at one
// block per SM, clusters of 8 did not all fit on the H200 at once.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "slope/core/dtype.hpp"
#include "slope/gpu/device_buffer.hpp"

namespace slope::gpu {

struct ThinGemmShape {
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;  // in elements; multiples of 8 (16-byte rows)
  DType dtype = DType::kF16;
};

// One planned shape with its workspace (partial tiles and arrival counters). Built in
// place, never copied; calls on one stream at a time (they share the workspace).
class ThinGemm {
 public:
  // k_splits 0: the library's choice (about two blocks per SM); else 1, 2, 4, 8 or 16.
  // Throws kInvalidInput naming the problem for a shape the kernel cannot take.
  ThinGemm(const ThinGemmShape& shape, int sm_count, int k_splits = 0);
  ThinGemm(const ThinGemm&) = delete;
  ThinGemm& operator=(const ThinGemm&) = delete;

  // C = A B^T on `stream`; pointers 16-byte aligned. C's elements outside m x n untouched.
  void run(const void* a, const void* b, void* c, cudaStream_t stream) const;
  const ThinGemmShape& shape() const { return shape_; }
  int k_splits() const { return k_splits_; }
  int block_n() const { return block_n_; }

 private:
  ThinGemmShape shape_;
  int k_splits_ = 1;
  int block_n_ = 16;
  DeviceBuffer partials_, arrivals_;
};

}  // namespace slope::gpu
