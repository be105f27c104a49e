#include "slope/model/decoder_linears.hpp"

namespace slope {

std::vector<DecoderLinear> decoder_linears(const ModelConfig& c) {
  const int64_t q_out = c.heads * c.head_dim;
  const int64_t kv_out = c.kv_heads * c.head_dim;
  std::vector<DecoderLinear> linears = {{"qkv_proj", q_out + 2 * kv_out, c.hidden, {q_out, kv_out, kv_out}},
                                        {"o_proj", c.hidden, q_out}};
  if (c.gated_mlp)
    linears.push_back({"gate_up_proj", 2 * c.ffn, c.hidden, {c.ffn, c.ffn}});
  else
    linears.push_back({"up_proj", c.ffn, c.hidden});
  linears.push_back({"down_proj", c.hidden, c.ffn});
  return linears;
}

}  // namespace slope
