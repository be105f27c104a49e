// slope: SLoPe 2:4-sparse + lazy low-rank experiments. Exit codes: 0 success, 2 bad input
// (a one-line message names the problem), 1 runtime failure.
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli_common.hpp"
#include "commands.hpp"
#include "slope/core/build_info.hpp"
#include "slope/core/error.hpp"

namespace {

std::string joined(const std::vector<std::string>& parts, const std::string& separator) {
  std::string out;
  for (const std::string& part : parts) out += (out.empty() ? "" : separator) + part;
  return out;
}

// CLI11 answers a missing or misspelt command, or an option before any command, with "A
// subcommand is required"; name what was given, and the commands.
void reject_unknown_command(const CLI::App& app, int argc, char** argv) {
  const std::string first = argc < 2 ? "" : argv[1];
  if (first == "-h" || first == "--help" || first == "--version") return;
  std::vector<std::string> names;
  for (const CLI::App* command : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (!first.empty() && command->check_name(first)) return;
    names.push_back(command->get_name());
  }
  const std::string what = first.empty()      ? "no command given"
                           : first[0] == '-' ? "unknown option '" + first + "' before a command"
                                             : "unknown command '" + first + "'";
  throw slope::Error(slope::ErrorKind::kInvalidInput, what + " (commands: " + joined(names, ", ") + ")");
}

// What to say of a parse error. CLI11's own message for arguments it did not expect lists them
// in reverse order ("2 --m 3 --n" for "--n 3 --m 2"); name the command and give them as typed.
std::string parse_error_message(const CLI::App& app, const CLI::ParseError& error) {
  if (dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr) {
    for (const CLI::App* command : app.get_subcommands()) {  // the command that was parsed
      const std::vector<std::string> extras = command->remaining();
      if (extras.empty()) continue;
      return command->get_name() + ": unexpected argument(s) '" + joined(extras, " ") + "' (slope " +
             command->get_name() + " --help lists the options)";
    }
  }
  return error.what();
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
    std::cerr << "slope: error: " << parse_error_message(app, e) << "\n";
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
  } catch (const std::bad_alloc&) {  // its what() says only "std::bad_alloc"
    std::cerr << "slope: error: out of host memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "slope: error: " << e.what() << "\n";
    return 1;
  } catch (...) {  // nothing slope throws, but a dependency might
    std::cerr << "slope: error: unknown exception\n";
    return 1;
  }
}
