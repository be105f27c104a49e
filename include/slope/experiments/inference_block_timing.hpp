// Times a block of SLoPe inference layers (2:4 sparse, with lazy low-rank adapters) against
// the same block of dense cuBLASLt layers, for each adapter ratio and adapter form. Shared by
// `slope layer --mode inference` (one shape of hidden size d at a time) and `slope model` (a
// decoder block's linear layers).
#pragma once

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "slope/core/dtype.hpp"
#include "slope/experiments/block_shapes.hpp"
#include "slope/gpu/dense_gemm.hpp"
#include "slope/gpu/inference_linear.hpp"
#include "slope/gpu/sparse_engine.hpp"

namespace slope {

struct InferenceBlockOptions {
  int64_t tokens = 2048;
  DType dtype = DType::kF16;
  int samples = 30;
  gpu::OutputLayout output = gpu::OutputLayout::kFeatureMajor;
  // Chained: each layer reads the previous one's output (an MLP block). Otherwise every layer
  // reads an input of its own (a decoder block's projections, whose attention core and
  // activations, dense on both sides, are not timed).
  bool chained = true;
  // The adapter forms timed at r > 0 (the fastest is reported).
  std::vector<gpu::AdapterForm> forms = {gpu::AdapterForm::kMerged, gpu::AdapterForm::kPreAdd,
                                         gpu::AdapterForm::kFolded};
  // At most this many copies of the block, rotated so that each call reads its weights and
  // activations from HBM, not from the L2 (bench::rotation_count).
  int max_rotation = 16;
};

// One adapter ratio's measurement. Every form's time comes from samples interleaved with
// dense; `overhead` (the median per-pair ratio minus 1) from samples interleaved with the
// r = 0 block, which also picks the fastest form, reported as sparse_ms. A form not run (every
// adapter form at r = 0) has no entry in form_ms.
struct InferenceBlockRow {
  double ratio = 0;
  int64_t rank = 0;  // per adapter, before padding; a fused linear carries one per projection
  double dense_ms = 0, sparse_ms = 0;
  std::string form;  // "none" at r = 0
  std::map<gpu::AdapterForm, double> form_ms;
  double overhead = 0;  // nan where no r = 0 block was measured before this ratio
  // r = 0's speedup over dense divided by 1 + overhead: both factors are ratios of samples
  // taken side by side, so this estimate does not mix dense's time from one pairing with the
  // adapter's from another, minutes later (dense_ms / sparse_ms does, at r > 0). At r = 0,
  // dense_ms / sparse_ms when the ratios start at 0; nan where overhead is, or before r = 0.
  double speedup_via_r0 = NAN;
  // A form's time beside dense, nan for a form not run.
  double form_time(gpu::AdapterForm form) const {
    const auto it = form_ms.find(form);
    return it == form_ms.end() ? NAN : it->second;
  }
};

// `hidden` sets each ratio's rank (adapter_rank(ratio, hidden)). The ratios are measured in
// the order given; start with 0 to get the overheads.
std::vector<InferenceBlockRow> time_inference_block(const std::vector<BlockLinear>& linears, int64_t hidden,
                                                    const std::vector<double>& adapter_ratios,
                                                    const InferenceBlockOptions& options, gpu::SparseEngine& engine,
                                                    gpu::DenseGemmCache& dense);

}  // namespace slope
