// The linear layers of the shapes the layer experiments measure: the attention projection
// (d -> d), the MLP's upsample (d -> 4d) and downsample (4d -> d), and the MLP block (up,
// ReLU, down on the activations the up projection writes: feature-major, or token-major when
// the layers write a token-major output).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "slope/gpu/sparse_engine.hpp"
#include "slope/model/decoder_linears.hpp"

namespace slope {

struct BlockLinear {
  int64_t d_out, d_in;
  gpu::InputLayout input;
  bool relu;  // ReLU after this linear (the block's upsample)
  // Projections fused into this one product (a decoder's q, k and v), each with an adapter of
  // its own: their row counts (gpu::InferenceLinearSpec::projection_rows); empty: one.
  std::vector<int64_t> projection_rows = {};
};

inline const std::vector<std::string>& block_shape_names() {
  static const std::vector<std::string> names = {"attention", "upsample", "downsample", "mlp_block"};
  return names;
}

inline std::vector<BlockLinear> block_linears(const std::string& shape, int64_t d, bool token_major_output = false) {
  const auto tok = gpu::InputLayout::kTokenMajor;
  const auto hidden = token_major_output ? tok : gpu::InputLayout::kFeatureMajor;
  if (shape == "attention") return {{d, d, tok, false}};
  if (shape == "upsample") return {{4 * d, d, tok, false}};
  if (shape == "downsample") return {{d, 4 * d, tok, false}};
  return {{4 * d, d, tok, true}, {d, 4 * d, hidden, false}};
}

// One decoder block's products of a model (decoder_linears), each reading a token-major input
// of its own: what `slope model` times, in inference and in training.
inline std::vector<BlockLinear> decoder_block_linears(const ModelConfig& model) {
  std::vector<BlockLinear> linears;
  for (const DecoderLinear& l : decoder_linears(model))
    linears.push_back({l.d_out, l.d_in, gpu::InputLayout::kTokenMajor, false, l.projection_rows});
  return linears;
}

}  // namespace slope
