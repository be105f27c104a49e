#include "slope/experiments/layer_inference_experiment.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "slope/core/geometric_mean.hpp"
#include "slope/experiments/block_shapes.hpp"
#include "slope/experiments/inference_block_timing.hpp"

namespace slope {

Table run_layer_inference_experiment(const LayerInferenceOptions& o, gpu::SparseEngine& engine,
                                     gpu::DenseGemmCache& dense, Metadata& summary, const Progress& progress) {
  Table table({"hidden", "shape", "adapter_ratio", "rank", "tokens", "dense_ms", "sparse_ms", "speedup", "form",
               "merged_ms", "preadd_ms", "folded_ms", "overhead_vs_r0", "speedup_via_r0"});
  InferenceBlockOptions block;
  block.tokens = o.tokens;
  block.dtype = o.dtype;
  block.samples = o.samples;
  block.output = o.output;
  block.chained = true;
  const bool token_major_out = o.output == gpu::OutputLayout::kTokenMajor;
  std::map<double, GeometricMean> overhead_factors;  // 1 + overhead, by adapter ratio
  double min_r0_speedup = 1e30;
  for (int64_t d : o.hidden) {
    for (const std::string& shape : block_shape_names()) {
      const auto rows = time_inference_block(block_linears(shape, d, token_major_out), d, o.adapter_ratios, block,
                                             engine, dense);
      for (const InferenceBlockRow& r : rows) {
        table.add_row({d, shape, r.ratio, r.rank, o.tokens, r.dense_ms, r.sparse_ms, r.dense_ms / r.sparse_ms, r.form,
                       r.form_time(gpu::AdapterForm::kMerged), r.form_time(gpu::AdapterForm::kPreAdd),
                       r.form_time(gpu::AdapterForm::kFolded), r.overhead, r.speedup_via_r0});
        if (r.rank == 0 && d >= 1024) min_r0_speedup = std::min(min_r0_speedup, r.dense_ms / r.sparse_ms);
        if (r.rank > 0 && d >= 2048 && shape != "attention" && !std::isnan(r.overhead))
          overhead_factors[r.ratio].add(1.0 + r.overhead);
        if (progress)
          progress(fmt::format("layer inference d={:5} {:10} r={:4} dense {:8.4f} ms  sparse {:8.4f} ms ({:6})  "
                               "speedup {:5.2f}  adapter overhead {:+5.1f}%",
                               d, shape, r.rank, r.dense_ms, r.sparse_ms, r.form, r.dense_ms / r.sparse_ms,
                               100 * r.overhead));
      }
    }
  }
  for (const auto& [ratio, factors] : overhead_factors)
    summary.emplace_back(fmt::format("adapter_overhead_geomean_ratio_{:.4f}_mlp_d2048plus", ratio),
                         fmt::format("{:.4f}", factors.value() - 1.0));
  if (min_r0_speedup < 1e29) summary.emplace_back("min_r0_speedup_d1024plus", fmt::format("{:.4f}", min_r0_speedup));
  summary.emplace_back("output_layout", token_major_out ? "token-major" : "feature-major");
  return table;
}

}  // namespace slope
