// Pieces every `slope` subcommand shares: output options, run metadata, error mapping.
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "slope/core/error.hpp"
#include "slope/core/table.hpp"
#include "slope/model/model_config.hpp"

namespace slope::cli {

// The command line as typed, recorded in every result file.
void set_command_line(int argc, char** argv);
const std::string& command_line();

struct OutputOptions {
  std::string format = "table";
  std::string out;   // empty: standard output
  std::string csv;   // also write CSV here
  std::string json;  // also write JSON here
};
void add_output_options(CLI::App& app, OutputOptions& options);

// Commit, build type, command and date; subcommands append their own facts.
Metadata base_metadata();

// Renders `table` in the chosen format to --out (atomically) or stdout, and writes the
// --csv and --json copies. The table goes to stdout only when no file was asked for.
void emit(const Table& table, const Metadata& meta, const OutputOptions& options);

// A repeatable option's values, each given once: a value given twice would only measure the
// same rows twice, so it is refused as bad input (kInvalidInput) rather than run.
template <typename T>
void require_distinct(const std::vector<T>& values, const std::string& option) {
  for (size_t i = 0; i < values.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (values[j] == values[i]) {
        std::ostringstream value;
        value << values[i];
        throw Error(ErrorKind::kInvalidInput, option + " " + value.str() + " is given twice");
      }
}

// --adapter-ratio's values: each in [0, 1) (validate_adapter_ratio) and each given once.
void require_adapter_ratios(const std::vector<double>& ratios);

// The models a command's --model (zoo names) and --config (HuggingFace config.json files)
// options name, in that order; an unknown name, a bad file, a zoo model named twice (under its
// own name and the paper's, say) or a file given twice throws kInvalidInput.
std::vector<ModelConfig> named_models(const std::vector<std::string>& names, const std::vector<std::string>& configs);

// Progress lines for long runs go to stderr so that stdout stays machine-readable.
void progress(const std::string& line);

}  // namespace slope::cli
