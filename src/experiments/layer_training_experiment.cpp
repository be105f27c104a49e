#include "slope/experiments/layer_training_experiment.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "slope/core/geometric_mean.hpp"
#include "slope/experiments/block_shapes.hpp"
#include "slope/experiments/training_block_timing.hpp"

namespace slope {

Table run_layer_training_experiment(const LayerTrainingOptions& o, gpu::SparseEngine& engine,
                                    gpu::DenseGemmCache& dense, Metadata& summary, const Progress& progress) {
  Table table({"hidden", "shape", "tokens", "phase", "dense_ms", "sparse_ms", "speedup", "ceiling"});
  const int64_t t_max = *std::max_element(o.tokens.begin(), o.tokens.end());
  GeometricMean block_speedups;  // MLP blocks, d >= 4096, the most tokens
  double min_total = 1e30;
  for (int64_t t : o.tokens)
    for (int64_t d : o.hidden)
      for (const std::string& shape : block_shape_names()) {
        TrainingBlockOptions block;
        block.tokens = t;
        block.dtype = o.dtype;
        block.samples = o.samples;
        for (const TrainingPhaseRow& r : time_training_block(block_linears(shape, d), block, engine, dense)) {
          table.add_row({d, shape, t, r.phase, r.dense_ms, r.sparse_ms, r.speedup, r.ceiling});
          if (r.phase != "total") continue;
          if (shape == "mlp_block" && d >= 4096 && t == t_max) block_speedups.add(r.speedup);
          if (d >= 2048) min_total = std::min(min_total, r.speedup);
          if (progress)
            progress(fmt::format("layer training d={:5} {:10} t={:5} dense {:8.4f} ms  sparse {:8.4f} ms  speedup {:5.2f}",
                                 d, shape, t, r.dense_ms, r.sparse_ms, r.speedup));
        }
      }
  if (!block_speedups.empty())
    summary.emplace_back("mlp_block_total_speedup_geomean_d4096plus_t" + std::to_string(t_max),
                         fmt::format("{:.4f}", block_speedups.value()));
  if (min_total < 1e29) summary.emplace_back("min_total_speedup_d2048plus", fmt::format("{:.4f}", min_total));
  return table;
}

}  // namespace slope
