#include "slope/experiments/model_training_experiment.hpp"

#include <cmath>

#include <fmt/format.h>

#include "slope/core/geometric_mean.hpp"
#include "slope/core/paper_data.hpp"
#include "slope/experiments/block_shapes.hpp"
#include "slope/experiments/training_block_timing.hpp"

namespace slope {

Table run_model_training_experiment(const ModelTrainingOptions& o, gpu::SparseEngine& engine,
                                    gpu::DenseGemmCache& dense, Metadata& summary, const Progress& progress) {
  Table table({"model", "paper_model", "hidden", "tokens", "accumulation", "phase", "dense_ms", "sparse_ms", "speedup",
               "ceiling", "paper_speedup"});
  const std::vector<ModelConfig> models = models_or_paper_models(o.models);
  const auto reference = paper_data::speedups();
  TrainingBlockOptions block;
  block.tokens = o.tokens;
  block.dtype = o.dtype;
  block.samples = o.samples;
  block.chained = false;  // the attention core and the activation sit between the projections
  block.accumulation = o.accumulation;
  GeometricMean measured, measured_step, paper;
  for (const ModelConfig& m : models) {
    const auto theirs = paper_data::cell(reference, paper_name(m.name), "SLoPe", "training_speedup");
    for (const TrainingPhaseRow& r : time_training_block(decoder_block_linears(m), block, engine, dense)) {
      const bool total = r.phase == "total", step = r.phase == "step";
      table.add_row({m.name, paper_name(m.name), m.hidden, o.tokens, static_cast<int64_t>(o.accumulation), r.phase,
                     r.dense_ms, r.sparse_ms, r.speedup, r.ceiling, (total || step) && theirs ? *theirs : NAN});
      if (!total && !step) continue;
      (total ? measured : measured_step).add(r.speedup);
      if (total && theirs) paper.add(*theirs);
      if (progress)
        progress(fmt::format("model training {:16} {:5} t={} dense {:8.3f} ms  sparse {:8.3f} ms  speedup {:5.2f} "
                             "(paper {})",
                             m.name, r.phase, o.tokens, r.dense_ms, r.sparse_ms, r.speedup,
                             theirs ? fmt::format("{:.2f}", *theirs) : "-"));
    }
  }
  if (!measured.empty()) summary.emplace_back("speedup_geomean", fmt::format("{:.4f}", measured.value()));
  if (!measured_step.empty())
    summary.emplace_back(fmt::format("step_speedup_geomean_acc{}", o.accumulation),
                         fmt::format("{:.4f}", measured_step.value()));
  if (!paper.empty() && paper.count() == measured.count())
    summary.emplace_back("paper_speedup_geomean", fmt::format("{:.4f}", paper.value()));
  return table;
}

}  // namespace slope
