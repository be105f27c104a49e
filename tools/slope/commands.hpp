// Each subcommand registers itself on the app and runs when selected.
#pragma once

#include <CLI/CLI.hpp>

namespace slope::cli {

void register_memory(CLI::App& app);
void register_prune(CLI::App& app);
// GPU experiments; in a build without CUDA they explain that and fail.
void register_gpu_commands(CLI::App& app);

}  // namespace slope::cli
