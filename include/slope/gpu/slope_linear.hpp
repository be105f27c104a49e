// SLoPe's training layer (feature-major activations, see sparselt_plan.hpp):
//   forward        Y^T  = W^R X^T (+ b) (+ (X L R)^T)                sparse, W pruned 2:4 by rows
//   input grad     dX^T = (W^{R,C})^T dY^T                           sparse, the double-pruned
//                                                                    transpose stored row-wise 2:4
//   weight grad    dW   = dY^T X, dense into shared scratch, then only W's kept elements,
//                  in the order of W's compressed values, added to the kept gradient
//   bias grad      db   = row sums of dY^T
// W's mask is fixed at initialisation by magnitude (the paper); W^{R,C} is the column 2:4
// pruning of W^R, its column mask recomputed every mask_change_freq steps.
//
// Optimizer step without dense round trips: W's kept values are the head of W's compressed
// cuSPARSELt buffer (checked at start-up, compressed_layout.hpp), so AdamW updates them in
// place (kept_values()). T = (W^{R,C})^T is then refreshed from them by a memory-bound kernel
// (refresh()), using W's 2:4 positions and one column-mask flag bit per kept value
// (refresh_kernels.hpp). Both compressed buffers get their metadata from probe matrices (ones
// on exactly the slots slope tracks), so a kept value that is exactly zero never moves, and
// W's metadata then holds W's positions: the kernels read them there (positions.hpp; checked
// at start-up too) instead of from a second copy.
// If the layout check fails, the layer keeps its kept values in a buffer of its own and
// compresses W and T from dense after each step (the fallback, also the benchmark baseline);
// if only the metadata check fails, it keeps its own copy of W's positions.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <span>
#include <string>

#include "slope/core/dtype.hpp"
#include "slope/gpu/dense_gemm.hpp"
#include "slope/gpu/device_buffer.hpp"
#include "slope/gpu/refresh_kernels.hpp"
#include "slope/gpu/sparse_engine.hpp"
#include "slope/gpu/sparse_linear.hpp"
#include "slope/gpu/training_adapter.hpp"

namespace slope::gpu {

class AdamW;
class SparseInferenceLinear;

// What the layers of a model share: engines and the dense weight-gradient scratch. Like the
// scratch, everything here serves one layer at a time: the layers of a workspace run on one
// stream.
class TrainingWorkspace {
 public:
  TrainingWorkspace(SparseEngine& engine, DenseGemmCache& dense)
      : engine_(engine), dense_(dense), side_dense_(dense.tunes()) {}
  SparseEngine& engine() { return engine_; }
  DenseGemmCache& dense() { return dense_; }
  // GEMM plans for the adapters' side-stream products: their own cuBLASLt workspaces, which
  // the main stream's products never touch while a side product runs.
  DenseGemmCache& side_dense() { return side_dense_; }
  // Scratch for one dense d_out x d_in 16-bit matrix (the weight gradient, or a matrix on its
  // way to compression), grown to the largest layer's need.
  void* grad_scratch(int64_t elements);
  size_t scratch_bytes() const { return scratch_.bytes(); }

 private:
  SparseEngine& engine_;
  DenseGemmCache& dense_;
  DenseGemmCache side_dense_;
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
  // Y^T (d_out x tokens), the adapter included when it is on.
  void forward(const void* x, void* y, cudaStream_t stream);
  // dX^T (d_in x tokens) into dx when not null; adds (accumulate) or writes the kept weight
  // gradient, the bias gradient and the adapter's gradients. dy: dY^T (d_out x tokens);
  // x: the forward's input.
  void backward(const void* x, const void* dy, void* dx, bool accumulate, cudaStream_t stream);
  // The sparse phases of backward (without the adapter), for timing.
  void grad_input(const void* dy, void* dx, cudaStream_t stream) const;
  void grad_weight(const void* x, const void* dy, bool accumulate, cudaStream_t stream);

  // Registers the kept values, the bias and (when on) the adapter with the optimizer.
  void add_to(AdamW& optimizer, const std::string& name);
  // After the optimizer changed kept_values(): brings W^{R,C} up to date.
  void refresh(cudaStream_t stream);
  // Recomputes W^{R,C}'s column mask from the current W and rebuilds T (probe compression).
  void change_column_mask(cudaStream_t stream);
  // The baseline refresh: W and T compressed by cuSPARSELt from dense matrices built from
  // the kept values (what a framework without in-place values does every step).
  void refresh_by_recompress(cudaStream_t stream);

  // Switches the lazy adapter on (L^T random with `scale`, R zero): the layer's function is
  // unchanged until the optimizer moves R. Register it with the optimizer afterwards
  // (adapter()->add_to).
  void enable_adapter(int64_t rank, uint64_t seed, float scale, cudaStream_t stream);
  TrainingAdapter* adapter() { return adapter_.get(); }
  // Writes this layer (W^R, bias, adapter) into an inference layer of the same shape, whose
  // rank is the adapter's rank (0 without one).
  void export_to(SparseInferenceLinear& out, cudaStream_t stream);
  // Dense W^R (d_out x d_in) into `out`.
  void dense_weight(void* out, cudaStream_t stream) const;

  const TrainingLinearSpec& spec() const { return spec_; }
  bool values_in_place() const { return in_place_; }
  void* kept_values();
  const void* kept_values() const;
  const void* kept_grad() const { return grad_.get(); }
  void* kept_grad() { return grad_.get(); }
  const void* bias() const { return bias_.get(); }
  const void* bias_grad() const { return bias_grad_.get(); }
  // W's positions live only in W's compressed metadata (no copy of the layer's own).
  bool positions_in_metadata() const { return positions_in_metadata_; }
  const uint8_t* column_flags() const { return flags_.as<uint8_t>(); }
  const SparseLinear& weight() const { return *w_; }
  SparseLinear& weight() { return *w_; }
  // Bytes this layer holds on the device (weights, transposed weights, its own positions
  // where it keeps them, column flags, gradients, bias and its gradient, adapter), not the
  // shared scratch or plans.
  size_t state_bytes() const;
  // Bytes refresh() moves in the in-place path: W's kept values, positions and flags read,
  // T's values written.
  double refresh_bytes() const;

 private:
  void rebuild_transpose(cudaStream_t stream);
  TransposeParts transpose_parts() const;
  // Where the kernels read W's positions: W's metadata, or the layer's own copy.
  Positions2to4 positions() const;

  TrainingWorkspace& ws_;
  TrainingLinearSpec spec_;
  // indices_: W's positions (prune_rows_2to4's format), held only where the metadata check failed.
  DeviceBuffer bias_, bias_grad_, indices_, flags_, grad_;
  DeviceBuffer values_;  // the fallback's kept values (empty when they live in W's buffer)
  bool in_place_ = true;
  bool positions_in_metadata_ = false;
  std::unique_ptr<SparseLinear> w_;  // W^R, d_out x d_in
  std::unique_ptr<SparseLinear> t_;  // (W^{R,C})^T, d_in x d_out
  TransposeParts t_parts_;           // t_'s parts as refresh writes them, fixed at construction
  std::unique_ptr<TrainingAdapter> adapter_;
  std::unique_ptr<CompressedWeight> baseline_w_, baseline_t_;  // refresh_by_recompress's targets
  const DenseGemm* dw_ = nullptr;
};

// After an optimizer step: every layer's T refreshed, or its column mask recomputed when
// `step` is a multiple of mask_change_freq (0: never).
void refresh_after_step(std::span<SlopeLinear* const> layers, int64_t step, int64_t mask_change_freq,
                        cudaStream_t stream);

}  // namespace slope::gpu
