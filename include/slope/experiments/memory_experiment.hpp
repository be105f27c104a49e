// `slope memory`: the paper's memory-reduction table, by the paper's accounting or ours.
#pragma once

#include <vector>

#include "slope/core/table.hpp"
#include "slope/model/memory_model.hpp"
#include "slope/model/model_config.hpp"

namespace slope {

struct MemoryOptions {
  std::vector<ModelConfig> models;     // default: the paper's seven
  std::vector<double> adapter_ratios;  // default: 0, 1/64 (1.56%), 1/16 (6.25%)
  Protocol protocol = Protocol::kExact;
  bool prune_lm_head = false;  // see MemoryQuery::prune_lm_head
};

// The default adapter ratios of the paper's table.
std::vector<double> paper_adapter_ratios();

// One row per (model, method, mode, adapter ratio). Columns: model, method, mode,
// adapter_ratio, rank, layers, bytes, dense_bytes, ratio, gib, dense_gib, and for the paper
// protocol paper_ratio and diff (ratio - paper_ratio; empty where the paper has no value).
Table run_memory_experiment(const MemoryOptions& options);

}  // namespace slope
