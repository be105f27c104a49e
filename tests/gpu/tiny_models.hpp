// Small models for the per-model experiments' GPU tests: fast to build and time, yet with
// the shapes that need care (grouped-query attention, a gated MLP, an FFN width that is a
// multiple of 16 but not of 64).
#pragma once

#include "slope/model/model_config.hpp"

namespace slope::testing {

inline ModelConfig tiny_gated_model() {
  ModelConfig m;
  m.name = "tiny-gqa";
  m.family = Family::kLlama;
  m.hidden = 256;
  m.heads = 4;
  m.kv_heads = 2;
  m.head_dim = 64;
  m.ffn = 528;
  m.gated_mlp = true;
  return m;
}

}  // namespace slope::testing
