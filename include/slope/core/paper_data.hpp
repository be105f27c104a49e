// The paper's published tables and figure read-offs (data/paper/*.csv), compiled in.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace slope::paper_data {

const char* memory_table_csv();
const char* speedup_table_csv();
const char* figures_read_off_csv();

// The memory table as (model, method) -> column -> ratio. Columns: training,
// inference_r0, inference_r1.56pct, inference_r6.25pct.
using RatioTable = std::map<std::pair<std::string, std::string>, std::map<std::string, double>>;
RatioTable memory_ratios();
// The end-to-end speedup table, same keys. Columns: training_speedup, inference_speedup_r0,
// inference_speedup_r1.56pct, inference_speedup_r6.25pct.
RatioTable speedups();
// The suffix of both tables' inference column for an adapter ratio ("r0", "r1.56pct",
// "r6.25pct"); none for a ratio the paper did not report.
std::optional<std::string> adapter_column_suffix(double ratio);
// The (model, method) row's value in `column`, where the table has one (model: the paper's name).
std::optional<double> cell(const RatioTable& table, const std::string& model, const std::string& method,
                           const std::string& column);

// One value read off a figure: (figure, series, hidden) -> value.
struct FigurePoint {
  std::string figure;
  std::string series;
  long hidden;
  double value;
};
std::vector<FigurePoint> figure_points();

}  // namespace slope::paper_data
