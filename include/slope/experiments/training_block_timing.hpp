// Times the training phases of a block of SLoPe layers (sparse forward, sparse input gradient
// through the double-pruned transpose, dense weight gradient gathered to W's kept elements)
// against the same block of dense cuBLASLt layers doing the same three products. Shared by
// `slope layer --mode training` (one shape of hidden size d at a time) and `slope model --mode
// training` (a decoder block's linear layers).
#pragma once

#include <string>
#include <vector>

#include "slope/core/adamw.hpp"
#include "slope/core/dtype.hpp"
#include "slope/experiments/block_shapes.hpp"
#include "slope/gpu/dense_gemm.hpp"
#include "slope/gpu/sparse_engine.hpp"

namespace slope {

struct TrainingBlockOptions {
  int64_t tokens = 2048;
  DType dtype = DType::kF16;
  int samples = 30;
  // Chained: each layer reads the previous one's output and its gradient flows back into that
  // layer (an MLP block, through the ReLU of a layer marked relu). Otherwise every layer reads
  // an input of its own and writes an input gradient of its own (a decoder block's
  // projections, whose attention core, norms and activations, dense on both sides, are not
  // timed).
  bool chained = true;
  // Above 0, one more row, "step": this many micro-batches of forward and backward with the
  // weight gradients accumulated, then one clipped AdamW step (and SLoPe's refresh of
  // W^{R,C}), launched eagerly because the step reads its gradient norm on the host.
  int accumulation = 0;
};

// One phase of the block: forward, grad_input, grad_weight, total (all three), or step. Times
// are the medians of samples interleaved with dense, the speedup the median per-pair ratio.
// ceiling: the speedup if the sparse products ran at twice dense's rate and the rest at
// dense's (2 for the sparse phases, 1 for grad_weight, 1.5 for the total; nan for the step,
// whose optimizer and refresh are bound by memory, not by the products).
struct TrainingPhaseRow {
  std::string phase;
  double dense_ms = 0, sparse_ms = 0, speedup = 0, ceiling = 0;
};

// The optimizer the training-step benchmarks run (learning rate, weight decay 0.1, the
// gradient norm clipped to 1), the same for SLoPe and dense.
AdamWConfig training_step_config();

std::vector<TrainingPhaseRow> time_training_block(const std::vector<BlockLinear>& linears,
                                                  const TrainingBlockOptions& options, gpu::SparseEngine& engine,
                                                  gpu::DenseGemmCache& dense);

}  // namespace slope
