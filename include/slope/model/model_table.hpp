// The architecture numbers of models as a table (`slope models`): what a user checks before
// an experiment, and what scripts that time the rest of a decoder block read.
#pragma once

#include <vector>

#include "slope/core/table.hpp"
#include "slope/model/model_config.hpp"

namespace slope {

// One row per model: model, paper_model, family, hidden, layers, ffn, heads, kv_heads,
// head_dim, vocab, positions, gated_mlp, norm ("layernorm" or "rmsnorm"), tied_lm_head,
// linear_bias (flags as 0 / 1), parameters.
Table model_table(const std::vector<ModelConfig>& models);

}  // namespace slope
