// Y = (X L) R for a thin rank r, everything row-major and token-major (X: t x d_in, L: d_in x
// r, R: r x d_out, Y: t x d_out), the product a lazy low-rank adapter adds.
//
// At rank ratio <= 0.05 the work is bound by memory: the thin product T = X L reads X, the
// wide one T R writes Y, and each alone leaves HBM idle in its tail (and cannot use it in
// both directions). So the tokens are cut into chunks and run as a two-stream pipeline:
// chunk i's wide product runs on a side stream while chunk i+1's thin product runs on the
// caller's stream. With one chunk it is the plain pair of cuBLASLt products. The pipeline is
// ordered with events, so it can be captured into a CUDA graph.
#pragma once

#include <cuda_runtime.h>

#include <vector>

#include "slope/core/dtype.hpp"
#include "slope/gpu/dense_gemm.hpp"
#include "slope/gpu/device_buffer.hpp"

namespace slope::gpu {

class LowRankProduct {
 public:
  // `chunks` must cut `tokens` into equal multiples of 16.
  LowRankProduct(DenseGemmCache& dense, int64_t tokens, int64_t d_in, int64_t rank, int64_t d_out, DType dtype,
                 int chunks, cudaStream_t stream);
  ~LowRankProduct();
  LowRankProduct(const LowRankProduct&) = delete;
  LowRankProduct& operator=(const LowRankProduct&) = delete;

  // Y = (X L) R on `stream` (the side stream's work is joined back before it returns).
  void run(const void* x, const void* l, const void* r, void* y, cudaStream_t stream) const;
  int chunks() const { return chunks_; }

 private:
  int64_t tokens_, d_in_, rank_, d_out_;
  int chunks_;
  const DenseGemm* thin_ = nullptr;  // T^T = L^T X^T per chunk (column-major view)
  const DenseGemm* wide_ = nullptr;  // Y^T = R^T T^T per chunk
  DeviceBuffer t_;                   // T, t x r
  cudaStream_t side_ = nullptr;
  std::vector<cudaEvent_t> thin_done_;
  cudaEvent_t side_done_ = nullptr;
};

}  // namespace slope::gpu
