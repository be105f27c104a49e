#include "slope/model/model_table.hpp"

#include <string>

namespace slope {

Table model_table(const std::vector<ModelConfig>& models) {
  Table table({"model", "paper_model", "family", "hidden", "layers", "ffn", "heads", "kv_heads", "head_dim", "vocab",
               "positions", "gated_mlp", "norm", "tied_lm_head", "linear_bias", "parameters"});
  const auto flag = [](bool b) { return int64_t{b ? 1 : 0}; };
  for (const ModelConfig& m : models)
    table.add_row({m.name, paper_name(m.name), std::string(to_string(m.family)), m.hidden, m.layers, m.ffn, m.heads,
                   m.kv_heads, m.head_dim, m.vocab, m.positions, flag(m.gated_mlp),
                   std::string(m.norm_bias ? "layernorm" : "rmsnorm"), flag(m.tied_lm_head), flag(m.linear_bias),
                   parameter_count(m)});
  return table;
}

}  // namespace slope
