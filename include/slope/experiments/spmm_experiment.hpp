// `slope spmm`: the paper's SpMM figure. 2:4 sparse (cuSPARSELt, planned and tuned once) vs
// dense (cuBLASLt, best of its heuristic candidates) for the transformer's linear shapes.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "slope/core/dtype.hpp"
#include "slope/core/table.hpp"
#include "slope/gpu/dense_gemm.hpp"
#include "slope/gpu/sparse_engine.hpp"

namespace slope {

using Progress = std::function<void(const std::string&)>;

// The paper's hidden sizes.
std::vector<int64_t> paper_hidden_sizes();

// The linear shapes of a block for hidden size d: W is m x k.
struct LinearShape {
  std::string name;  // attention, upsample, downsample, upsample_tiled
  int64_t m, k;
  bool tiled;
};
std::vector<LinearShape> spmm_shapes(int64_t hidden);

// What the GPU sweeps share: hidden sizes, tokens, element type, timing samples.
struct SweepOptions {
  std::vector<int64_t> hidden = paper_hidden_sizes();
  int64_t tokens = 2048;
  DType dtype = DType::kF16;
  int samples = 30;
};

struct SpmmOptions : SweepOptions {
  // X as nn.Linear holds it (token-major), or as a chain of slope layers passes it on
  // (feature-major, X^T); the dense twin reads the same layout.
  gpu::InputLayout input = gpu::InputLayout::kTokenMajor;
  // Y token-major (nn.Linear's layout; cuSPARSELt picks faster kernels for it on the H200) or
  // feature-major (Y^T, what a chain of sparse layers passes on); the dense twin writes the same.
  gpu::OutputLayout output = gpu::OutputLayout::kTokenMajor;
};

// Columns: hidden, shape, m, k, tokens, dtype, dense_ms, sparse_ms, speedup, dense_tflops,
// sparse_tflops, weight_bytes (W as cuSPARSELt stores it: kept values and metadata),
// dense_gbps and sparse_gbps (X, W as stored and Y over each product's time), rel_error, tiles,
// row_parts (each part's rows: "2048+512", "768x4"), configs (each part's cuSPARSELt kernel
// configuration, in the same form), plan (searched / cached / default), engine_uses,
// dense_eager_ms, sparse_eager_ms, eager_speedup (the same products launched eagerly),
// dense_heuristic_ms, speedup_vs_heuristic (against cuBLASLt's untuned first pick),
// heuristic_is_tuned (yes: tuning kept that pick, and the tuned timing is reused).
// `summary` receives geometric-mean and minimum speedups over the engine's choices, the
// device-to-device copy bandwidth (hbm_copy_gbps) and the largest share of it a sparse product
// reached (sparse_hbm_fraction_max: near 1 where reading W bounds the product, at few tokens).
Table run_spmm_experiment(const SpmmOptions& options, gpu::SparseEngine& engine, gpu::DenseGemmCache& dense,
                          Metadata& summary, const Progress& progress);

}  // namespace slope
