#include "slope/experiments/memory_experiment.hpp"

#include <cmath>
#include <optional>

#include "slope/core/paper_data.hpp"

namespace slope {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// The paper's memory ratio for a row, where it reports one.
std::optional<double> paper_value(const paper_data::RatioTable& table, const std::string& model,
                                  Method method, Mode mode, double ratio) {
  if (method == Method::kDense) return std::nullopt;
  std::optional<std::string> column;
  if (mode == Mode::kTraining) {
    if (ratio == 0.0) column = "training";
  } else if (const auto suffix = paper_data::adapter_column_suffix(ratio)) {
    column = "inference_" + *suffix;
  }
  if (!column) return std::nullopt;
  return paper_data::cell(table, paper_name(model), method == Method::kSlope ? "SLoPe" : "FST", *column);
}

}  // namespace

std::vector<double> paper_adapter_ratios() { return {0.0, 1.0 / 64.0, 1.0 / 16.0}; }

Table run_memory_experiment(const MemoryOptions& options) {
  const std::vector<ModelConfig> models = models_or_paper_models(options.models);
  std::vector<double> ratios = options.adapter_ratios.empty() ? paper_adapter_ratios() : options.adapter_ratios;
  for (double r : ratios) validate_adapter_ratio(r);

  const bool paper = options.protocol == Protocol::kPaper;
  std::vector<std::string> columns = {"model", "method", "mode", "adapter_ratio", "rank", "layers",
                                      "bytes", "dense_bytes", "ratio", "gib", "dense_gib"};
  if (paper) {
    columns.push_back("paper_ratio");
    columns.push_back("diff");
  }
  Table table(columns);
  const auto reference = paper_data::memory_ratios();

  for (const ModelConfig& model : models)
    for (Mode mode : {Mode::kTraining, Mode::kInference})
      for (Method method : {Method::kSlope, Method::kFst, Method::kDense})
        for (double ratio : ratios) {
          // Dense and FST carry no adapters: one row each, at ratio 0.
          if (method != Method::kSlope && ratio != 0.0) continue;
          MemoryQuery q{method, mode, ratio, options.protocol, 0, options.prune_lm_head};
          const MemoryBreakdown got = memory_bytes(model, q);
          const MemoryBreakdown dense =
              memory_bytes(model, {Method::kDense, mode, 0.0, options.protocol, got.layers, false});
          const double ratio_value = static_cast<double>(got.total()) / static_cast<double>(dense.total());
          std::vector<Cell> row = {model.name, std::string(to_string(method)), std::string(to_string(mode)),
                                   ratio, got.rank, got.layers, got.total(), dense.total(), ratio_value,
                                   static_cast<double>(got.total()) / kGiB,
                                   static_cast<double>(dense.total()) / kGiB};
          if (paper) {
            const auto value = paper_value(reference, model.name, method, mode, ratio);
            row.push_back(value ? Cell(*value) : Cell());
            row.push_back(value ? Cell(ratio_value - *value) : Cell());
          }
          table.add_row(std::move(row));
        }
  return table;
}

}  // namespace slope
