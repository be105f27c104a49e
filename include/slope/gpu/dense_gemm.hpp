// Dense GEMM on cuBLASLt, planned once per shape: D = alpha op(A) op(B) + beta D (+ bias),
// column-major BLAS convention, fp16/bf16 operands, fp32 accumulation, explicit stream.
//
// The layer convention Y = X W^T (X: t x k row-major, W: n x k row-major) is the column-major
// product Y^T (n x t) = W (as k x n, op T) times X^T (as k x t, op N): see dense_linear().
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <string>

#include "slope/core/dtype.hpp"
#include "slope/gpu/device_buffer.hpp"

namespace slope::gpu {

enum class Op { kN, kT };

struct GemmShape {
  Op op_a = Op::kT;
  Op op_b = Op::kN;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldd = 0;  // leading dimensions of the stored (pre-op) matrices
  DType dtype = DType::kF16;
  bool bias = false;  // epilogue adds a length-m bias to every column of D
  bool relu = false;  // epilogue applies max(x, 0) last (after the beta D and bias terms)
  std::string key() const;
  bool operator<(const GemmShape& o) const { return key() < o.key(); }
};

// Shape of Y (t x n) = X (t x k) W^T (W: n x k), all row-major, Y with row stride ldy.
GemmShape linear_shape(int64_t t, int64_t n, int64_t k, DType dtype, bool bias = false, int64_t ldy = 0);
// The dense twin of a sparse product: Y^T (n x t, row-major) = W X^T with X token-major
// (t x k) or feature-major (X^T, k x t). Operands: run(x, w, y).
GemmShape feature_major_shape(int64_t t, int64_t n, int64_t k, DType dtype, bool token_major_input);
// The same product written token-major: Y (t x n, row-major) = X W^T, X token-major or
// feature-major. Operands: run(w, x, y).
GemmShape token_major_output_shape(int64_t t, int64_t n, int64_t k, DType dtype, bool token_major_input);
// The dense twin in either output layout (one of the two shapes above); run_dense_twin, below
// DenseGemm, calls it with the operands in the order that shape takes them.
GemmShape dense_twin_shape(int64_t t, int64_t n, int64_t k, DType dtype, bool token_major_input,
                           bool token_major_output);
// The gradients of that layer (W: n x k), the shapes every dense backward uses:
//   input gradient   dX^T (k x t, row-major) = W^T dY^T; operands run(dy, w, dx)
//   weight gradient  dW   (n x k, row-major) = dY^T X, X token- or feature-major as in the
//                    forward; operands run(x, dy, dw)
GemmShape input_grad_shape(int64_t t, int64_t n, int64_t k, DType dtype);
GemmShape weight_grad_shape(int64_t t, int64_t n, int64_t k, DType dtype, bool token_major_input);

class CublasLtHandle {
 public:
  CublasLtHandle();
  ~CublasLtHandle();
  CublasLtHandle(const CublasLtHandle&) = delete;
  CublasLtHandle& operator=(const CublasLtHandle&) = delete;
  cublasLtHandle_t get() const { return handle_; }

 private:
  cublasLtHandle_t handle_ = nullptr;
};

// One planned GEMM shape. Built in place, never copied or moved (cuBLASLt descriptors are
// referenced by pointer).
class DenseGemm {
 public:
  // tune: time up to 32 of cuBLASLt's heuristic candidates (and, for outputs with too few
  // tiles to fill the GPU, their split-K variants) on scratch operands rotated past the L2,
  // and keep the fastest, so that the dense baseline is as good as the library allows.
  DenseGemm(const CublasLtHandle& handle, const GemmShape& shape, bool tune, cudaStream_t stream);
  ~DenseGemm();
  DenseGemm(const DenseGemm&) = delete;
  DenseGemm& operator=(const DenseGemm&) = delete;

  // D = alpha op(A) op(B) + beta D (+ bias). With beta != 0 D is read first (C aliases D).
  void run(const void* a, const void* b, void* d, cudaStream_t stream, float alpha = 1.0f,
           float beta = 0.0f, const void* bias = nullptr) const;
  const GemmShape& shape() const { return shape_; }
  // What tuning timed: cuBLASLt's heuristic candidates and the split-K variants added to them.
  int heuristic_candidates() const { return heuristic_candidates_; }
  int split_k_candidates() const { return split_k_candidates_; }
  // Whether `other` runs the same cuBLASLt algorithm (kernel, tile, split-K and all).
  bool same_algorithm(const DenseGemm& other) const;

 private:
  void tune_on_scratch(cudaStream_t stream, int count, const cublasLtMatmulHeuristicResult_t* results);

  const CublasLtHandle& handle_;
  GemmShape shape_;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, d_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  DeviceBuffer workspace_;
  size_t workspace_bytes_ = 0;
  int heuristic_candidates_ = 0, split_k_candidates_ = 0;
};

// A dense_twin_shape() product: run(x, w, y) feature-major, run(w, x, y) token-major.
void run_dense_twin(const DenseGemm& gemm, bool token_major_output, const void* x, const void* w, void* y,
                    cudaStream_t stream);

// DenseGemm plans by shape, created on first use.
class DenseGemmCache {
 public:
  explicit DenseGemmCache(bool tune = true) : tune_(tune) {}
  const DenseGemm& get(const GemmShape& shape, cudaStream_t stream);
  bool tunes() const { return tune_; }

 private:
  bool tune_;
  CublasLtHandle handle_;
  std::map<std::string, std::unique_ptr<DenseGemm>> plans_;
};

}  // namespace slope::gpu
