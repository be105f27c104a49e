// `slope layer --mode inference`: SLoPe inference layers (2:4 sparse, with lazy low-rank
// adapters of 0, 1.56% and 6.25% of the hidden size) against dense cuBLASLt layers, for the
// attention, upsample and downsample shapes and an MLP block (up + ReLU + down).
#pragma once

#include <vector>

#include "slope/core/dtype.hpp"
#include "slope/core/table.hpp"
#include "slope/experiments/spmm_experiment.hpp"
#include "slope/gpu/dense_gemm.hpp"
#include "slope/gpu/sparse_engine.hpp"

namespace slope {

struct LayerInferenceOptions : SweepOptions {
  std::vector<double> adapter_ratios = {0.0, 1.0 / 64.0, 1.0 / 16.0};
  // Every layer, sparse and dense, writes Y (t x d_out, token-major: the way nn.Linear does)
  // or Y^T (feature-major, the default), adapters included. A shape's first layer reads a
  // token-major X either way; the MLP block's second reads the first's output as it is.
  gpu::OutputLayout output = gpu::OutputLayout::kFeatureMajor;
};

// Columns: hidden, shape, adapter_ratio, rank, tokens, dense_ms, sparse_ms, speedup, form,
// merged_ms, preadd_ms, folded_ms, overhead_vs_r0. Every form's time comes from samples
// interleaved with dense; overhead_vs_r0 from samples interleaved with the r = 0 layer (the
// median of the per-pair ratios, minus 1), which also picks the fastest form, reported as
// sparse_ms (a form not run, as every adapter form at r = 0, is nan). `summary` gets the
// adapter overheads (geometric mean over d >= 2048, MLP shapes) and the slowest r = 0 speedup
// for d >= 1024.
Table run_layer_inference_experiment(const LayerInferenceOptions& options, gpu::SparseEngine& engine,
                                     gpu::DenseGemmCache& dense, Metadata& summary, const Progress& progress);

}  // namespace slope
