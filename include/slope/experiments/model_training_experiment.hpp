// `slope model --mode training`: the training phases of one decoder block's linear layers of
// each model (fused q, k, v; o; up, or gate and up; down), SLoPe (sparse forward, sparse input
// gradient, dense weight gradient to the kept elements) against dense cuBLASLt, beside the
// paper's end-to-end training speedups. The attention core, norms, activations and the
// optimizer are not timed, so the measured speedup is what the linear layers give; a whole
// model's is diluted by the rest (and at best 1.5: two of the three products are sparse).
#pragma once

#include <vector>

#include "slope/core/dtype.hpp"
#include "slope/core/table.hpp"
#include "slope/experiments/spmm_experiment.hpp"
#include "slope/gpu/dense_gemm.hpp"
#include "slope/gpu/sparse_engine.hpp"
#include "slope/model/model_config.hpp"

namespace slope {

struct ModelTrainingOptions {
  std::vector<ModelConfig> models;  // empty: the paper's seven
  // A training micro-batch (four sequences of 2048); at 2048 tokens the small models'
  // products are latency bound (see `slope layer --mode training`).
  int64_t tokens = 8192;
  // Micro-batches per optimizer step in the "step" row (0: no step row).
  int accumulation = 4;
  DType dtype = DType::kF16;
  int samples = 30;
};

// Columns: model, paper_model, hidden, tokens, accumulation, phase (forward, grad_input,
// grad_weight, total; step: whole training steps of the block's linear layers with the
// optimizer, see TrainingBlockOptions), dense_ms, sparse_ms, speedup, ceiling, paper_speedup
// (the paper's training speedup on the total and step rows, nan elsewhere). Each projection
// reads a token-major input of its own and writes a feature-major output, as SLoPe's
// training layers do. `summary` gets the geometric mean speedups over the models of the
// total and the step, and the paper's.
Table run_model_training_experiment(const ModelTrainingOptions& options, gpu::SparseEngine& engine,
                                    gpu::DenseGemmCache& dense, Metadata& summary, const Progress& progress);

}  // namespace slope
