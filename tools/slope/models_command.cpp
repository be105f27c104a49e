// slope models: the architecture numbers of the zoo's models (or of HuggingFace configs).
#include <memory>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "commands.hpp"
#include "slope/model/model_table.hpp"

namespace slope::cli {
namespace {

struct ModelsArgs {
  std::vector<std::string> models;
  std::vector<std::string> configs;
  OutputOptions output;
};

void run(const ModelsArgs& args) {
  std::vector<ModelConfig> models = named_models(args.models, args.configs);
  if (models.empty()) models = model_zoo();
  Metadata meta = base_metadata();
  meta.emplace_back("experiment", "models");
  emit(model_table(models), meta, args.output);
}

}  // namespace

void register_models(CLI::App& app) {
  auto args = std::make_shared<ModelsArgs>();
  CLI::App* sub = app.add_subcommand("models", "Architecture numbers of the model zoo (no GPU needed)");
  sub->add_option("--model", args->models, "Zoo model (repeatable); default: the whole zoo");
  sub->add_option("--config", args->configs, "HuggingFace config.json to list (repeatable)");
  add_output_options(*sub, args->output);
  sub->callback([args] { run(*args); });
}

}  // namespace slope::cli
