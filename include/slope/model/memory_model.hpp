// Bytes of every stored tensor for dense, SLoPe and FST training and inference.
//
// Two accountings:
//  - kPaper follows the paper's measurement (data/paper and docs/memory.md): models cut to a
//    few layers, a one-byte mask per pruned element, half-size states for every 2-D
//    parameter under SLoPe, FST's dense copy, mask and two compressed copies.
//  - kExact counts whole models as slope stores them: compressed 2:4 values + metadata
//    (9/16 of the fp16 bytes) for W and for the transposed W^{R,C}, gradient and fp32 moments
//    on the kept half only, W's 2:4 positions (2 bits per kept value; the compressed
//    metadata holds them too, but its encoding is private), one dense gradient scratch of the
//    largest pruned linear shared by all layers, unpruned tensors at full cost.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "slope/model/model_config.hpp"

namespace slope {

enum class Method { kDense, kSlope, kFst };
enum class Mode { kTraining, kInference };
enum class Protocol { kPaper, kExact };

const char* to_string(Method method);
const char* to_string(Mode mode);
const char* to_string(Protocol protocol);
Protocol parse_protocol(const std::string& name);

// Adapter rank for a ratio of the hidden size: floor(ratio * hidden), rounded down to a
// multiple of 16 (what the sparse tensor cores and the paper use). Throws kInvalidInput
// unless 0 <= ratio < 1.
int64_t adapter_rank(double ratio, int64_t hidden);
void validate_adapter_ratio(double ratio);

// Decoder layers the paper's memory measurement used for a model (0: not a paper model).
int64_t paper_layer_count(const std::string& zoo_name, Mode mode);

struct MemoryBreakdown {
  int64_t layers = 0;
  int64_t rank = 0;
  std::map<std::string, int64_t> parts;  // weights, masks, gradients, optimizer, adapters, scratch
  int64_t total() const;
};

struct MemoryQuery {
  Method method = Method::kSlope;
  Mode mode = Mode::kTraining;
  double adapter_ratio = 0.0;
  Protocol protocol = Protocol::kExact;
  int64_t layers = 0;  // 0: the protocol's default (paper counts, or the whole model)
  // Also prune an untied LM head (SLoPe only; no adapter on it). Off by default, as in the
  // paper's description; docs/memory.md shows that it explains the paper's LLaMA-3 and
  // Mistral inference rows.
  bool prune_lm_head = false;
};

MemoryBreakdown memory_bytes(const ModelConfig& model, const MemoryQuery& query);

}  // namespace slope
