// The products one decoder block of a model runs through its linear layers at inference, as
// an inference engine runs them: q, k and v fused into one product, and so are gate and up
// where the MLP is gated. Fusing changes nothing SLoPe computes: W is pruned 2:4 along d_in,
// row by row, so the fused weight's rows are the rows of the three pruned separately; each
// projection keeps its own adapter, so a fused product carries one adapter per projection.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "slope/model/model_config.hpp"

namespace slope {

struct DecoderLinear {
  std::string name;  // qkv_proj, o_proj, up_proj or gate_up_proj, down_proj
  int64_t d_out = 0, d_in = 0;
  // The rows of each projection fused into this product (q, k, v; gate, up), in order; empty
  // for a product of one projection.
  std::vector<int64_t> projection_rows = {};
  int projections() const { return projection_rows.empty() ? 1 : static_cast<int>(projection_rows.size()); }
};

std::vector<DecoderLinear> decoder_linears(const ModelConfig& config);

}  // namespace slope
