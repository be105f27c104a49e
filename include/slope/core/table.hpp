// A result table: named columns, rows of typed cells. Experiments produce tables; writers
// turn them into text, CSV or JSON. Nothing here touches files except write_file_atomically.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace slope {

using Cell = std::variant<std::monostate, int64_t, double, std::string>;

struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<Cell>> rows;

  explicit Table(std::vector<std::string> names = {}) : columns(std::move(names)) {}
  // Appends a row; throws kInternal if its width differs from the column count.
  void add_row(std::vector<Cell> row);
  // Index of a column by name; throws kInternal if absent.
  size_t column(const std::string& name) const;
  double number(size_t row, const std::string& name) const;
  std::string text(size_t row, const std::string& name) const;
};

// Ordered key/value facts recorded with a result: commit, GPU, versions, command.
using Metadata = std::vector<std::pair<std::string, std::string>>;

std::string format_cell(const Cell& cell);
std::string to_csv(const Table& table);
// Right-aligned, space-separated columns for terminals; doubles with `precision` digits.
std::string to_text(const Table& table, int precision = 4);
// {"meta": {...}, "rows": [{column: value, ...}, ...]}
nlohmann::json to_json(const Table& table, const Metadata& meta);

enum class OutputFormat { kTable, kCsv, kJson };
OutputFormat parse_output_format(const std::string& name);
std::string render(const Table& table, const Metadata& meta, OutputFormat format);

// Writes `content` to `path` through a temporary file in the same directory and a rename,
// so a reader never sees a half-written file. Throws kIo on failure.
void write_file_atomically(const std::string& path, const std::string& content);

// Why write_file_atomically could not write `path` (its directory missing or read-only, or
// `path` a directory), or an empty string where it could: lets a caller refuse a bad output
// path before a long run rather than after it.
std::string why_unwritable(const std::string& path);

}  // namespace slope
