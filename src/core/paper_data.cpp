#include "slope/core/paper_data.hpp"

#include <string>

#include "slope/core/csv.hpp"
#include "slope/core/error.hpp"

namespace slope::paper_data {

RatioTable memory_ratios() {
  const auto rows = parse_simple_csv(memory_table_csv());
  if (rows.empty()) throw Error(ErrorKind::kInternal, "embedded memory table is empty");
  const auto& header = rows.front();
  RatioTable table;
  for (size_t r = 1; r < rows.size(); ++r) {
    const auto& row = rows[r];
    if (row.size() != header.size()) throw Error(ErrorKind::kInternal, "embedded memory table row has wrong width");
    auto& columns = table[{row[0], row[1]}];
    for (size_t c = 2; c < row.size(); ++c) columns[header[c]] = std::stod(row[c]);
  }
  return table;
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
