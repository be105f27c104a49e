// `slope model`: inference of one decoder block's linear layers of each model (fused q, k,
// v; o; up, or gate and up; down), SLoPe (2:4 sparse, lazy adapters of 0, 1.56% and 6.25% of
// the hidden size) against dense cuBLASLt, beside the paper's end-to-end inference speedups.
// The attention core, norms and activations are dense on both sides and not timed, so the
// measured speedup is what the linear layers give; a whole model's is diluted by the rest.
#pragma once

#include <vector>

#include "slope/core/dtype.hpp"
#include "slope/core/table.hpp"
#include "slope/experiments/spmm_experiment.hpp"
#include "slope/gpu/dense_gemm.hpp"
#include "slope/gpu/sparse_engine.hpp"
#include "slope/model/model_config.hpp"

namespace slope {

struct ModelInferenceOptions {
  std::vector<ModelConfig> models;  // empty: the paper's seven
  std::vector<double> adapter_ratios = {0.0, 1.0 / 64.0, 1.0 / 16.0};
  int64_t tokens = 2048;
  DType dtype = DType::kF16;
  int samples = 30;
  int max_rotation = 16;  // copies of a block rotated past the L2 (1: the test's, for speed)
};

// Columns: model, paper_model, hidden, adapter_ratio, rank, tokens, dense_ms, sparse_ms,
// speedup, form, merged_ms, folded_ms, overhead_vs_r0, paper_speedup (nan where the paper has
// none). Every linear is token-major in and out; the pairings are those of `slope layer --mode
// inference`, with the merged and folded forms (the pre-add form was never the fastest in
// that experiment's runs, and token-major plans cost ~0.25 s each to make). A fused product
// of P projections carries P adapters of rank r: the folded form in one K extension of P r
// columns (their T's columns interleaved, inference_linear.hpp), the merged form in P r extra
// rows. `summary` gets the geometric mean speedup over the models per ratio, measured and the
// paper's, and the geometric mean adapter overhead per ratio.
Table run_model_inference_experiment(const ModelInferenceOptions& options, gpu::SparseEngine& engine,
                                     gpu::DenseGemmCache& dense, Metadata& summary, const Progress& progress);

}  // namespace slope
