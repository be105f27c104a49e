#include "cli_common.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <utility>

#include "slope/core/build_info.hpp"
#include "slope/model/hf_config.hpp"
#include "slope/model/memory_model.hpp"

namespace slope::cli {
namespace {
std::string g_command_line;

// The file a path names, ./a.csv and a.csv alike; the path as given where it cannot be resolved.
std::filesystem::path resolved(const std::string& path) {
  std::error_code ec;
  std::filesystem::path file = std::filesystem::weakly_canonical(path, ec);
  return ec ? std::filesystem::path(path) : file;
}

void require_distinct_files(const OutputOptions& options) {
  std::vector<std::pair<const char*, std::filesystem::path>> named;  // the options that name a file
  for (const auto& [option, path] : {std::pair{"--out", &options.out}, {"--csv", &options.csv}, {"--json", &options.json}})
    if (!path->empty()) named.emplace_back(option, resolved(*path));
  for (size_t i = 0; i < named.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      require(named[j].second != named[i].second, std::string(named[j].first) + " and " + named[i].first +
                                                      " name the same file (" + named[i].second.string() + ")");
}

}  // namespace

void set_command_line(int argc, char** argv) {
  g_command_line.clear();
  for (int i = 0; i < argc; ++i) {
    if (i) g_command_line += ' ';
    g_command_line += argv[i];
  }
}

const std::string& command_line() { return g_command_line; }

void add_output_options(CLI::App& app, OutputOptions& options) {
  // Output files are checked as the command line is read, so that a run of many minutes does
  // not end in a path it cannot write.
  const CLI::Validator writable([](std::string& path) { return why_unwritable(path); }, "FILE");
  app.add_option("--format", options.format, "Output format: table, csv or json")
      ->check(CLI::IsMember({"table", "csv", "json"}));
  app.add_option("--out", options.out, "Write the output to this file (atomically) instead of stdout")
      ->check(writable);
  app.add_option("--csv", options.csv, "Also write the table as CSV to this file")->check(writable);
  app.add_option("--json", options.json, "Also write the table and run facts as JSON to this file")->check(writable);
  // Checked once the command line is read, before the run: one file named twice would hold
  // only the copy written last.
  app.parse_complete_callback([&options] { require_distinct_files(options); });
}

Metadata base_metadata() {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return {{"commit", build_commit()}, {"build_type", build_type()}, {"command", command_line()},
          {"date", date}};
}

void emit(const Table& table, const Metadata& meta, const OutputOptions& options) {
  const std::string text = render(table, meta, parse_output_format(options.format));
  if (!options.csv.empty()) write_file_atomically(options.csv, render(table, meta, OutputFormat::kCsv));
  if (!options.json.empty()) write_file_atomically(options.json, render(table, meta, OutputFormat::kJson));
  if (!options.out.empty()) {
    write_file_atomically(options.out, text);
  } else if (options.csv.empty() && options.json.empty()) {
    std::cout << text << std::flush;
  } else {
    std::cout << render(table, meta, OutputFormat::kTable) << std::flush;
  }
}

std::vector<ModelConfig> named_models(const std::vector<std::string>& names, const std::vector<std::string>& configs) {
  std::vector<ModelConfig> models;
  models.reserve(names.size() + configs.size());
  for (const auto& name : names) models.push_back(find_model(name));
  // The zoo's names as resolved, so that OPT-2.6B (the paper's) and OPT-2.7B are one model;
  // two config files may share a name and differ, so only the same file twice is refused.
  std::vector<std::string> zoo_names(models.size());
  std::transform(models.begin(), models.end(), zoo_names.begin(), [](const ModelConfig& m) { return m.name; });
  require_distinct(zoo_names, "--model");
  std::vector<std::string> config_files(configs.size());
  std::transform(configs.begin(), configs.end(), config_files.begin(),
                 [](const std::string& path) { return resolved(path).string(); });
  require_distinct(config_files, "--config");
  for (const auto& path : configs) models.push_back(load_hf_config(path));
  return models;
}

void require_adapter_ratios(const std::vector<double>& ratios) {
  for (double r : ratios) validate_adapter_ratio(r);
  require_distinct(ratios, "--adapter-ratio");
}

void progress(const std::string& line) { std::cerr << line << std::endl; }

}  // namespace slope::cli
