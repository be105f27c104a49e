// Each subcommand registers itself on the app and runs when selected.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace slope::cli {

void register_memory(CLI::App& app);
void register_prune(CLI::App& app);
void register_models(CLI::App& app);
// GPU experiments; in a build without CUDA they explain that and fail.
void register_gpu_commands(CLI::App& app);
// The GPU libraries this binary was compiled against (their headers), for `slope --version`;
// "no CUDA" in a build without them. Touches no GPU.
std::string gpu_build_description();

}  // namespace slope::cli
