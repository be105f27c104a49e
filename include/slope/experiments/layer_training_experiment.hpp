// `slope layer --mode training`: SLoPe training layers (sparse forward, sparse input
// gradient with the double-pruned transpose, dense weight gradient gathered to W's kept
// elements) against dense cuBLASLt layers doing the same three products, per phase.
#pragma once

#include <vector>

#include "slope/core/dtype.hpp"
#include "slope/core/table.hpp"
#include "slope/experiments/spmm_experiment.hpp"
#include "slope/gpu/dense_gemm.hpp"
#include "slope/gpu/sparse_engine.hpp"

namespace slope {

struct LayerTrainingOptions {
  std::vector<int64_t> hidden = paper_hidden_sizes();
  std::vector<int64_t> tokens = {2048, 8192};
  DType dtype = DType::kF16;
  int samples = 30;
};

// Columns: hidden, shape, tokens, phase (forward, grad_input, grad_weight, total), dense_ms,
// sparse_ms, speedup, ceiling (1.5 for the total: two of three products sparse; 2 for the
// sparse phases; 1 for grad_weight). `summary` gets the MLP-block geometric mean over
// d >= 4096 at the largest token count and the slowest total for d >= 2048.
Table run_layer_training_experiment(const LayerTrainingOptions& options, gpu::SparseEngine& engine,
                                    gpu::DenseGemmCache& dense, Metadata& summary, const Progress& progress);

}  // namespace slope
