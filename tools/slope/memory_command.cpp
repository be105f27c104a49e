// slope memory: bytes of dense, SLoPe and FST models in training and inference.
#include <memory>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "commands.hpp"
#include "slope/experiments/memory_experiment.hpp"

namespace slope::cli {
namespace {

struct MemoryArgs {
  std::vector<std::string> models;
  std::vector<std::string> configs;
  std::vector<double> ratios;
  std::string protocol = "exact";
  bool prune_lm_head = false;
  OutputOptions output;
};

void run(const MemoryArgs& args) {
  MemoryOptions options;
  options.protocol = parse_protocol(args.protocol);
  require_adapter_ratios(args.ratios);
  options.adapter_ratios = args.ratios;
  options.prune_lm_head = args.prune_lm_head;
  options.models = named_models(args.models, args.configs);
  const Table table = run_memory_experiment(options);
  Metadata meta = base_metadata();
  meta.emplace_back("experiment", "memory");
  meta.emplace_back("protocol", args.protocol);
  emit(table, meta, args.output);
}

}  // namespace

void register_memory(CLI::App& app) {
  auto args = std::make_shared<MemoryArgs>();
  CLI::App* sub = app.add_subcommand(
      "memory", "Memory of dense, SLoPe and FST models (training and inference) and their ratios");
  sub->add_option("--model", args->models, "Zoo model (repeatable); default: the paper's seven");
  sub->add_option("--config", args->configs, "HuggingFace config.json to add (repeatable)");
  sub->add_option("--adapter-ratio", args->ratios,
                  "Adapter rank as a fraction of the hidden size (repeatable); default 0, 1/64, 1/16");
  sub->add_option("--protocol", args->protocol, "paper (the paper's reduced-layer accounting) or exact")
      ->check(CLI::IsMember({"paper", "exact"}));
  sub->add_flag("--prune-lm-head", args->prune_lm_head,
                "Also prune an untied LM head (what-if; explains the paper's LLaMA-3/Mistral rows)");
  add_output_options(*sub, args->output);
  sub->callback([args] { run(*args); });
}

}  // namespace slope::cli
