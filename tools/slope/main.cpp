// slope: SLoPe 2:4-sparse + lazy low-rank experiments. Exit codes: 0 success, 2 bad input
// (a one-line message names the problem), 1 runtime failure.
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli_common.hpp"
#include "commands.hpp"
#include "slope/core/build_info.hpp"
#include "slope/core/error.hpp"

namespace {

// CLI11 answers a misspelt command with "A subcommand is required"; name it, and the commands.
void reject_unknown_command(const CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return;
  std::string names;
  for (const CLI::App* command : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (command->check_name(argv[1])) return;
    names += (names.empty() ? "" : ", ") + command->get_name();
  }
  throw slope::Error(slope::ErrorKind::kInvalidInput,
                     std::string("unknown command '") + argv[1] + "' (commands: " + names + ")");
}

// Builds the command line and runs the command it names; its errors are main's to report.
int run(int argc, char** argv) {
  slope::cli::set_command_line(argc, argv);
  CLI::App app{"slope: 2:4-sparse plus lazy low-rank (SLoPe) training and inference experiments"};
  app.require_subcommand(1);
  // What a bug report or a result needs to name: the commit, the build type and the GPU
  // libraries compiled in.
  app.set_version_flag("--version", std::string("slope ") + slope::build_commit() + " (" + slope::build_type() +
                                        ", " + slope::cli::gpu_build_description() + ")");
  slope::cli::register_memory(app);
  slope::cli::register_prune(app);
  slope::cli::register_gpu_commands(app);
  slope::cli::register_models(app);
  try {
    reject_unknown_command(app, argc, argv);
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "slope: error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const slope::Error& e) {
    std::cerr << "slope: error: " << e.what() << "\n";
    return e.kind() == slope::ErrorKind::kInvalidInput ? 2 : 1;
  } catch (const std::exception& e) {
    std::cerr << "slope: error: " << e.what() << "\n";
    return 1;
  } catch (...) {  // nothing slope throws, but a dependency might
    std::cerr << "slope: error: unknown exception\n";
    return 1;
  }
}
