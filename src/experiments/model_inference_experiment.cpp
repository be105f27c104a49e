#include "slope/experiments/model_inference_experiment.hpp"

#include <cmath>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "slope/core/geometric_mean.hpp"
#include "slope/core/paper_data.hpp"
#include "slope/experiments/block_shapes.hpp"
#include "slope/experiments/inference_block_timing.hpp"

namespace slope {
namespace {

// The paper's inference speedup of a model at an adapter ratio, where it reports one.
std::optional<double> paper_speedup(const paper_data::RatioTable& table, const std::string& model, double ratio) {
  const auto suffix = paper_data::adapter_column_suffix(ratio);
  if (!suffix) return std::nullopt;
  return paper_data::cell(table, paper_name(model), "SLoPe", "inference_speedup_" + *suffix);
}

}  // namespace

Table run_model_inference_experiment(const ModelInferenceOptions& o, gpu::SparseEngine& engine,
                                     gpu::DenseGemmCache& dense, Metadata& summary, const Progress& progress) {
  Table table({"model", "paper_model", "hidden", "adapter_ratio", "rank", "tokens", "dense_ms", "sparse_ms", "speedup",
               "form", "merged_ms", "folded_ms", "overhead_vs_r0", "speedup_via_r0", "paper_speedup"});
  const std::vector<ModelConfig> models = models_or_paper_models(o.models);
  const auto reference = paper_data::speedups();
  InferenceBlockOptions block;
  block.tokens = o.tokens;
  block.dtype = o.dtype;
  block.samples = o.samples;
  block.output = gpu::OutputLayout::kTokenMajor;  // a decoder's activations, as nn.Linear holds them
  block.chained = false;
  block.forms = {gpu::AdapterForm::kMerged, gpu::AdapterForm::kFolded};
  block.max_rotation = o.max_rotation;
  std::map<double, GeometricMean> measured, paper;  // speedups, by ratio (paper: the same models)
  std::map<double, GeometricMean> via_r0;            // r = 0's speedup / (1 + overhead), by ratio
  std::map<double, GeometricMean> overhead_factors;  // 1 + adapter overhead, by ratio
  for (const ModelConfig& m : models) {
    for (const InferenceBlockRow& r : time_inference_block(decoder_block_linears(m), m.hidden, o.adapter_ratios, block, engine, dense)) {
      const double speedup = r.dense_ms / r.sparse_ms;
      const auto theirs = paper_speedup(reference, m.name, r.ratio);
      table.add_row({m.name, paper_name(m.name), m.hidden, r.ratio, r.rank, o.tokens, r.dense_ms, r.sparse_ms, speedup,
                     r.form, r.form_time(gpu::AdapterForm::kMerged), r.form_time(gpu::AdapterForm::kFolded), r.overhead,
                     r.speedup_via_r0, theirs ? *theirs : NAN});
      measured[r.ratio].add(speedup);
      if (!std::isnan(r.speedup_via_r0)) via_r0[r.ratio].add(r.speedup_via_r0);
      if (theirs) paper[r.ratio].add(*theirs);
      if (r.rank > 0 && !std::isnan(r.overhead)) overhead_factors[r.ratio].add(1.0 + r.overhead);
      if (progress)
        progress(fmt::format("model inference {:16} r={:4} dense {:8.4f} ms  sparse {:8.4f} ms ({:6})  speedup "
                             "{:5.2f} (via r=0 {:5.2f}, paper {})  adapter overhead {:+5.1f}%",
                             m.name, r.rank, r.dense_ms, r.sparse_ms, r.form, speedup, r.speedup_via_r0,
                             theirs ? fmt::format("{:.2f}", *theirs) : "-", 100 * r.overhead));
    }
  }
  for (const auto& [ratio, g] : measured) {
    summary.emplace_back(fmt::format("speedup_geomean_ratio_{:.4f}", ratio), fmt::format("{:.4f}", g.value()));
    if (paper.count(ratio) && paper.at(ratio).count() == g.count())
      summary.emplace_back(fmt::format("paper_speedup_geomean_ratio_{:.4f}", ratio),
                           fmt::format("{:.4f}", paper.at(ratio).value()));
  }
  for (const auto& [ratio, g] : via_r0)
    summary.emplace_back(fmt::format("speedup_via_r0_geomean_ratio_{:.4f}", ratio), fmt::format("{:.4f}", g.value()));
  for (const auto& [ratio, factors] : overhead_factors)
    summary.emplace_back(fmt::format("adapter_overhead_geomean_ratio_{:.4f}", ratio),
                         fmt::format("{:.4f}", factors.value() - 1.0));
  return table;
}

}  // namespace slope
