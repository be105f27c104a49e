// SLoPe's lazy low-rank adapter during training: Y += (X L) R, switched on late in training
// (the paper: the last 1% of iterations) with L random and R zero, so that the layer's
// function is unchanged at the switch. L is kept 2:4 along d_in (its mask fixed at the
// switch: a pruned entry gets no gradient), because the merged inference form prunes L^T
// together with W; the exported layer then computes exactly the trained function.
//
// Storage: L^T (r x d_in) and R (r x d_out), row-major 16-bit; activations feature-major as
// in SlopeLinear. The rank is padded to a multiple of 16 with zero rows that stay zero.
// All products are dense cuBLASLt GEMMs (the rank is small):
//   forward   H = X L (t x r, kept for backward);  Y^T = act(Y^T + (H R)^T), where Y^T holds
//             the sparse product (without its ReLU) and act is the layer's ReLU, if any
//   backward  dH = dY R^T;  dR (+)= H^T dY;  dL^T (+)= dH^T X;  dX^T += (dH L^T)^T
// X L in the forward and the backward's first three products are thin and memory-bound: they
// run on a side stream of the adapter's own, concurrently with the layer's compute-bound
// sparse products and dense weight gradient (the *_begin / *_end pairs), with GEMM plans of
// their own (`side`: a cuBLASLt workspace must not be shared by two streams at once). The
// adapters of one model may share `side`: each one's side work ends before the next begins.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "slope/core/dtype.hpp"
#include "slope/gpu/dense_gemm.hpp"
#include "slope/gpu/device_buffer.hpp"
#include "slope/gpu/sparse_engine.hpp"

namespace slope::gpu {

class AdamW;

struct TrainingAdapterSpec {
  int64_t d_out = 0;
  int64_t d_in = 0;
  int64_t rank = 0;  // before padding
  int64_t tokens = 0;
  DType dtype = DType::kF16;
  InputLayout input = InputLayout::kTokenMajor;
  bool relu = false;  // the layer's ReLU, applied by forward_end after adding (X L) R
};

class TrainingAdapter {
 public:
  TrainingAdapter(DenseGemmCache& dense, DenseGemmCache& side, const TrainingAdapterSpec& spec, cudaStream_t stream);
  ~TrainingAdapter();
  TrainingAdapter(const TrainingAdapter&) = delete;
  TrainingAdapter& operator=(const TrainingAdapter&) = delete;

  // L^T uniform in [-scale, scale) from `seed`, pruned 2:4 along d_in; R zero.
  void init_random(uint64_t seed, float scale, cudaStream_t stream);
  // Explicit L^T (rank x d_in, pruned here) and R (rank x d_out), device 16-bit, unpadded.
  void set(const void* l_t, const void* r, cudaStream_t stream);
  // forward in two halves around the layer's sparse product on `stream`: begin queues H = X L
  // on the side stream; end waits for it and turns y (the sparse product, d_out x tokens)
  // into act(Y^T + (H R)^T). H is kept for backward.
  void forward_begin(const void* x, cudaStream_t stream);
  void forward_end(void* y, cudaStream_t stream);
  // Gradients of L^T and R (added when accumulate); adds the adapter's share to dX^T when dx
  // is not null. dy: dY^T; x: the forward's input.
  void backward(const void* x, const void* dy, void* dx, bool accumulate, cudaStream_t stream);
  // backward in two halves around other work on `stream`: begin queues dH, dR and dL^T on the
  // side stream once `stream` has reached this point; end makes `stream` wait for them and
  // adds the adapter's share to dX^T. x and dy must stay unchanged in between.
  void backward_begin(const void* x, const void* dy, bool accumulate, cudaStream_t stream);
  void backward_end(void* dx, cudaStream_t stream);
  // Registers L^T and R with the optimizer.
  void add_to(AdamW& optimizer, const std::string& name);

  int64_t rank() const { return rank_; }  // padded
  const TrainingAdapterSpec& spec() const { return spec_; }
  const void* l_t() const { return l_t_.get(); }
  const void* r() const { return r_.get(); }
  const void* l_t_grad() const { return l_t_grad_.get(); }
  const void* r_grad() const { return r_grad_.get(); }
  size_t state_bytes() const;

 private:
  TrainingAdapterSpec spec_;
  int64_t rank_;
  DeviceBuffer l_t_, r_, l_t_grad_, r_grad_, h_, dh_;
  cudaStream_t side_ = nullptr;
  cudaEvent_t fork_ = nullptr, join_ = nullptr;
  const DenseGemm *xl_, *hr_, *dh_gemm_, *dr_, *dl_, *dx_;
};

}  // namespace slope::gpu
