#include "slope/core/csv.hpp"

#include <sstream>

namespace slope {
namespace {

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

}  // namespace

std::vector<std::vector<std::string>> parse_simple_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const std::string trimmed = trim(line);
    if (trimmed.empty() || trimmed[0] == '#') continue;
    std::vector<std::string> fields;
    std::istringstream cells(trimmed);
    std::string cell;
    while (std::getline(cells, cell, ',')) fields.push_back(trim(cell));
    rows.push_back(std::move(fields));
  }
  return rows;
}

}  // namespace slope
