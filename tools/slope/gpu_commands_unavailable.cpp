// In a build without CUDA the GPU experiments exist as commands that explain why they cannot run.
#include "commands.hpp"
#include "slope/core/error.hpp"

namespace slope::cli {

std::string gpu_build_description() { return "no CUDA"; }

void register_gpu_commands(CLI::App& app) {
  for (const char* name : {"spmm", "setup", "lowrank", "layer", "model", "memcheck"}) {
    CLI::App* sub = app.add_subcommand(name, std::string("GPU experiment (this build has no CUDA)"));
    sub->allow_extras();
    sub->callback([name] {
      throw Error(ErrorKind::kUnsupported,
                  std::string("'") + name + "' needs a GPU build of slope (configure with a CUDA compiler)");
    });
  }
}

}  // namespace slope::cli
