// `slope layer --mode step`: a whole training step of an MLP block (up d -> 4d with ReLU,
// down 4d -> d; the OPT models' block): N micro-batches of forward and backward with
// gradient accumulation, then one clipped AdamW step and the refresh of W^{R,C}. SLoPe
// layers against dense cuBLASLt layers with the same fused multi-tensor AdamW, per phase and
// end to end, with and without lazy adapters.
#pragma once

#include <vector>

#include "slope/core/dtype.hpp"
#include "slope/core/table.hpp"
#include "slope/experiments/spmm_experiment.hpp"
#include "slope/gpu/dense_gemm.hpp"
#include "slope/gpu/sparse_engine.hpp"

namespace slope {

struct LayerStepOptions {
  std::vector<int64_t> hidden = {2560, 4096, 5120, 7168, 9216};  // OPT-2.7B ... OPT-66B
  int64_t tokens = 2048;                                        // per micro-batch
  std::vector<int> accumulation = {1, 4, 16};
  std::vector<double> adapter_ratios = {0.0, 1.0 / 64};
  DType dtype = DType::kF16;
  int samples = 10;
};

// Columns: hidden, tokens, accumulation, adapter_ratio, rank, dense_ms, sparse_ms, speedup
// (end-to-end step), the phases of each side (forward_ms, backward_ms per micro-batch;
// optimizer_ms: norm, clipping and update; refresh_ms), mask_change_ms (one mask change of
// both layers), optimizer_refresh_gbps (update + in-place refresh, counted bytes over time),
// recompress_baseline_gbps (the same bytes, update + cuSPARSELt compression from dense),
// hbm_gbps (measured copy bandwidth). `summary`: the step speedup's geometric mean for
// d >= 4096 at accumulation 4 without adapters, the adapters' extra step time there, and the
// lowest optimizer + refresh bandwidth as a fraction of the copy bandwidth.
Table run_layer_step_experiment(const LayerStepOptions& options, gpu::SparseEngine& engine, gpu::DenseGemmCache& dense,
                                Metadata& summary, const Progress& progress);

}  // namespace slope
