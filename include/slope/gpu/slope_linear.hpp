// SLoPe's training layer (feature-major activations, see sparse_engine.hpp):
//   forward        Y^T  = W^R X^T (+ b)                        sparse, W pruned 2:4 by rows
//   input grad     dX^T = (W^{R,C})^T dY^T                      sparse, the double-pruned
//                                                               transpose stored row-wise 2:4
//   weight grad    dW   = dY^T X, dense into shared scratch, then only W's kept elements,
//                  in the order of W's compressed values, added to the kept gradient
//   bias grad      db   = row sums of dY^T
// W's mask is fixed at initialisation by magnitude (the paper); W^{R,C} is the column 2:4
// pruning of W^R. The layer owns both compressed weights, W's 2:4 indices (2 bits per kept
// value: cuSPARSELt's metadata encoding is private) and the kept gradient; a TrainingWorkspace
// owns the dense gradient scratch that every layer shares.
#pragma once

#include <cuda_runtime.h>

#include <memory>

#include "slope/core/dtype.hpp"
#include "slope/gpu/dense_gemm.hpp"
#include "slope/gpu/device_buffer.hpp"
#include "slope/gpu/sparse_engine.hpp"
#include "slope/gpu/sparse_linear.hpp"

namespace slope::gpu {

// What the layers of a model share: engines and the dense weight-gradient scratch.
class TrainingWorkspace {
 public:
  TrainingWorkspace(SparseEngine& engine, DenseGemmCache& dense) : engine_(engine), dense_(dense) {}
  SparseEngine& engine() { return engine_; }
  DenseGemmCache& dense() { return dense_; }
  // Scratch for one dense d_out x d_in gradient, grown to the largest layer's need.
  void* grad_scratch(int64_t elements);
  size_t scratch_bytes() const { return scratch_.bytes(); }

 private:
  SparseEngine& engine_;
  DenseGemmCache& dense_;
  DeviceBuffer scratch_;
};

struct TrainingLinearSpec {
  int64_t d_out = 0;
  int64_t d_in = 0;
  int64_t tokens = 0;
  DType dtype = DType::kF16;
  InputLayout input = InputLayout::kTokenMajor;  // layout of X (dY^T is always feature-major)
  bool bias = false;
  bool relu = false;  // forward applies ReLU in the epilogue (the MLP's upsample)
};

class SlopeLinear {
 public:
  SlopeLinear(TrainingWorkspace& workspace, const TrainingLinearSpec& spec, cudaStream_t stream);
  SlopeLinear(const SlopeLinear&) = delete;
  SlopeLinear& operator=(const SlopeLinear&) = delete;

  // Dense W (d_out x d_in) and bias (d_out, may be null): prunes, builds W^{R,C}, compresses.
  void init_weights(const void* w, const void* bias, cudaStream_t stream);
  // Y^T (d_out x tokens).
  void forward(const void* x, void* y, cudaStream_t stream) const;
  // dX^T (d_in x tokens) into dx when not null; adds (accumulate) or writes the kept weight
  // gradient and the bias gradient. dy: dY^T (d_out x tokens); x: the forward's input.
  void backward(const void* x, const void* dy, void* dx, bool accumulate, cudaStream_t stream);
  // The phases of backward, for timing.
  void grad_input(const void* dy, void* dx, cudaStream_t stream) const;
  void grad_weight(const void* x, const void* dy, bool accumulate, cudaStream_t stream);

  const TrainingLinearSpec& spec() const { return spec_; }
  const void* kept_grad() const { return grad_.get(); }
  const void* bias_grad() const { return bias_grad_.get(); }
  const uint8_t* indices() const { return indices_.as<uint8_t>(); }
  const SparseLinear& weight() const { return *w_; }
  SparseLinear& weight() { return *w_; }
  const SparseLinear& transpose_weight() const { return *t_; }
  // Bytes this layer holds on the device (weights, transposed weights, indices, gradients,
  // bias and its gradient), not counting the shared scratch or plan workspaces.
  size_t state_bytes() const;

 private:
  TrainingWorkspace& ws_;
  TrainingLinearSpec spec_;
  DeviceBuffer bias_, bias_grad_, indices_, grad_;
  std::unique_ptr<SparseLinear> w_;  // W^R, d_out x d_in
  std::unique_ptr<SparseLinear> t_;  // (W^{R,C})^T, d_in x d_out
  const DenseGemm* dw_ = nullptr;
};

}  // namespace slope::gpu
