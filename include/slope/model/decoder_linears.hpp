// The products one decoder block of a model runs through its linear layers at inference, as
// an inference engine runs them: q, k and v fused into one product, and so are gate and up
// where the MLP is gated. Fusing changes nothing SLoPe computes: W is pruned 2:4 along d_in,
// row by row, so the fused weight's rows are the rows of the three pruned separately; each
// projection keeps its own adapter, so a fused product carries `projections` adapters.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "slope/model/model_config.hpp"

namespace slope {

struct DecoderLinear {
  std::string name;  // qkv_proj, o_proj, up_proj or gate_up_proj, down_proj
  int64_t d_out = 0, d_in = 0;
  int projections = 1;  // fused projections (adapters) in this product
};

std::vector<DecoderLinear> decoder_linears(const ModelConfig& config);

}  // namespace slope
