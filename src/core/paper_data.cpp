#include "slope/core/paper_data.hpp"

#include <cmath>
#include <string>

#include "slope/core/csv.hpp"
#include "slope/core/error.hpp"

namespace slope::paper_data {

namespace {

// A table of (model, method, value columns...) rows.
RatioTable parse_ratio_table(const char* csv, const std::string& what) {
  const auto rows = parse_simple_csv(csv);
  if (rows.empty()) throw Error(ErrorKind::kInternal, "embedded " + what + " table is empty");
  const auto& header = rows.front();
  RatioTable table;
  for (size_t r = 1; r < rows.size(); ++r) {
    const auto& row = rows[r];
    if (row.size() != header.size()) throw Error(ErrorKind::kInternal, "embedded " + what + " table row has wrong width");
    auto& columns = table[{row[0], row[1]}];
    for (size_t c = 2; c < row.size(); ++c) columns[header[c]] = std::stod(row[c]);
  }
  return table;
}

}  // namespace

RatioTable memory_ratios() { return parse_ratio_table(memory_table_csv(), "memory"); }

RatioTable speedups() { return parse_ratio_table(speedup_table_csv(), "speedup"); }

std::optional<std::string> adapter_column_suffix(double ratio) {
  if (ratio == 0.0) return "r0";
  if (std::fabs(ratio - 1.0 / 64.0) < 1e-3) return "r1.56pct";
  if (std::fabs(ratio - 1.0 / 16.0) < 1e-3) return "r6.25pct";
  return std::nullopt;
}

std::optional<double> cell(const RatioTable& table, const std::string& model, const std::string& method,
                           const std::string& column) {
  const auto row = table.find({model, method});
  if (row == table.end()) return std::nullopt;
  const auto value = row->second.find(column);
  if (value == row->second.end()) return std::nullopt;
  return value->second;
}

std::vector<FigurePoint> figure_points() {
  std::vector<FigurePoint> points;
  for (const auto& row : parse_simple_csv(figures_read_off_csv())) {
    if (row.size() != 4) throw Error(ErrorKind::kInternal, "embedded figure table row has wrong width");
    points.push_back({row[0], row[1], std::stol(row[2]), std::stod(row[3])});
  }
  return points;
}

}  // namespace slope::paper_data
