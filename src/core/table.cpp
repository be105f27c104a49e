#include "slope/core/table.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "slope/core/error.hpp"

namespace slope {

void Table::add_row(std::vector<Cell> row) {
  if (row.size() != columns.size())
    throw Error(ErrorKind::kInternal, fmt::format("table row has {} cells for {} columns",
                                                  row.size(), columns.size()));
  rows.push_back(std::move(row));
}

size_t Table::column(const std::string& name) const {
  const auto it = std::find(columns.begin(), columns.end(), name);
  if (it == columns.end()) throw Error(ErrorKind::kInternal, "table has no column '" + name + "'");
  return static_cast<size_t>(it - columns.begin());
}

double Table::number(size_t row, const std::string& name) const {
  const Cell& cell = rows.at(row).at(column(name));
  if (const auto* d = std::get_if<double>(&cell)) return *d;
  if (const auto* i = std::get_if<int64_t>(&cell)) return static_cast<double>(*i);
  return NAN;
}

std::string Table::text(size_t row, const std::string& name) const {
  return format_cell(rows.at(row).at(column(name)));
}

std::string format_cell(const Cell& cell) {
  struct Visitor {
    std::string operator()(std::monostate) const { return ""; }
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const {
      if (std::isnan(v)) return "nan";
      return fmt::format("{:.6g}", v);
    }
    std::string operator()(const std::string& v) const { return v; }
  };
  return std::visit(Visitor{}, cell);
}

namespace {

// RFC 4180: a field holding a comma, a quote or a line break is quoted, its quotes doubled
// (a free-text column such as lowrank's candidates_ms must not shift the columns after it).
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char ch : text) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return quoted + "\"";
}

}  // namespace

std::string to_csv(const Table& table) {
  std::string out;
  for (size_t c = 0; c < table.columns.size(); ++c) out += (c ? "," : "") + csv_field(table.columns[c]);
  out += "\n";
  for (const auto& row : table.rows) {
    for (size_t c = 0; c < row.size(); ++c) out += (c ? "," : "") + csv_field(format_cell(row[c]));
    out += "\n";
  }
  return out;
}

std::string to_text(const Table& table, int precision) {
  std::vector<std::vector<std::string>> cells;
  cells.push_back(table.columns);
  for (const auto& row : table.rows) {
    std::vector<std::string> line;
    for (const auto& cell : row) {
      if (const auto* d = std::get_if<double>(&cell))
        line.push_back(std::isnan(*d) ? "-" : fmt::format("{:.{}f}", *d, precision));
      else
        line.push_back(std::holds_alternative<std::monostate>(cell) ? "-" : format_cell(cell));
    }
    cells.push_back(std::move(line));
  }
  std::vector<size_t> width(table.columns.size(), 0);
  for (const auto& line : cells)
    for (size_t c = 0; c < line.size(); ++c) width[c] = std::max(width[c], line[c].size());
  std::string out;
  for (const auto& line : cells) {
    for (size_t c = 0; c < line.size(); ++c)
      out += fmt::format("{}{:>{}}", c ? "  " : "", line[c], width[c]);
    out += "\n";
  }
  return out;
}

nlohmann::json to_json(const Table& table, const Metadata& meta) {
  nlohmann::json j;
  j["meta"] = nlohmann::json::object();
  for (const auto& [key, value] : meta) j["meta"][key] = value;
  j["rows"] = nlohmann::json::array();
  for (const auto& row : table.rows) {
    nlohmann::json r = nlohmann::json::object();
    for (size_t c = 0; c < row.size(); ++c) {
      const Cell& cell = row[c];
      if (std::holds_alternative<std::monostate>(cell)) r[table.columns[c]] = nullptr;
      else if (const auto* i = std::get_if<int64_t>(&cell)) r[table.columns[c]] = *i;
      else if (const auto* d = std::get_if<double>(&cell)) {
        if (std::isfinite(*d)) r[table.columns[c]] = *d;
        else r[table.columns[c]] = nullptr;
      } else r[table.columns[c]] = std::get<std::string>(cell);
    }
    j["rows"].push_back(std::move(r));
  }
  return j;
}

OutputFormat parse_output_format(const std::string& name) {
  if (name == "table") return OutputFormat::kTable;
  if (name == "csv") return OutputFormat::kCsv;
  if (name == "json") return OutputFormat::kJson;
  throw Error(ErrorKind::kInvalidInput, "unknown format '" + name + "' (expected table, csv or json)");
}

std::string render(const Table& table, const Metadata& meta, OutputFormat format) {
  switch (format) {
    case OutputFormat::kTable: return to_text(table);
    case OutputFormat::kCsv: return to_csv(table);
    case OutputFormat::kJson: return to_json(table, meta).dump(2) + "\n";
  }
  return {};
}

namespace {
std::filesystem::path directory_of(const std::filesystem::path& target) {
  return target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
}
}  // namespace

std::string why_unwritable(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) return "no file name given";
  const fs::path target(path);
  const fs::path dir = directory_of(target);
  std::error_code ec;
  if (fs::is_directory(target, ec)) return "cannot write " + path + ": it is a directory";
  if (!fs::is_directory(dir, ec)) return "cannot write " + path + ": directory " + dir.string() + " does not exist";
  // The temporary file and the rename both need write access to the directory.
  if (::access(dir.c_str(), W_OK) != 0)
    return "cannot write " + path + ": directory " + dir.string() + " is not writable";
  return {};
}

void write_file_atomically(const std::string& path, const std::string& content) {
  namespace fs = std::filesystem;
  if (const std::string why = why_unwritable(path); !why.empty()) throw Error(ErrorKind::kIo, why);
  const fs::path target(path);
  const fs::path dir = directory_of(target);
  std::error_code ec;
  const fs::path temp = dir / ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()));
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(ErrorKind::kIo, "cannot write " + temp.string() + ": " + std::strerror(errno));
    out << content;
    out.flush();
    if (!out) {
      fs::remove(temp, ec);
      throw Error(ErrorKind::kIo, "cannot write " + temp.string());
    }
  }
  fs::rename(temp, target, ec);
  if (ec) {
    fs::remove(temp, ec);
    throw Error(ErrorKind::kIo, "cannot rename to " + path);
  }
}

}  // namespace slope
