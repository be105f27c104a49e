// Transformer architecture descriptions (the model zoo) and the list of parameter tensors
// they imply. Only shapes matter here: the memory model and the layer benchmarks read them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace slope {

enum class Family { kOpt, kLlama, kMistral, kGpt2, kBert };
const char* to_string(Family family);

struct ModelConfig {
  std::string name;
  Family family = Family::kOpt;
  int64_t hidden = 0;
  int64_t layers = 0;
  int64_t ffn = 0;               // MLP inner width
  int64_t heads = 0;
  int64_t kv_heads = 0;          // == heads without grouped-query attention
  int64_t head_dim = 0;          // hidden / heads unless the config says otherwise
  int64_t vocab = 0;
  int64_t positions = 0;         // rows of a learned position table (0: rotary, no table)
  int64_t token_types = 0;       // BERT's segment embedding rows
  int64_t embed_proj_dim = 0;    // OPT-350m style projection (0 or == hidden: none)
  bool tied_lm_head = true;      // the LM head shares the token embedding
  bool linear_bias = true;       // linears carry biases
  bool gated_mlp = false;        // gate + up + down (LLaMA, Mistral) instead of up + down
  bool norm_bias = true;         // LayerNorm (weight + bias) vs RMSNorm (weight only)
};

// The zoo: OPT-2.7B, 6.7B, 13B, 30B, 66B, LLaMA-3-8B, Mistral-7B-v0.3, GPT-2, BERT-large.
const std::vector<ModelConfig>& model_zoo();
// Looks a model up by name, case-insensitively, also under the paper's table names
// ("OPT-2.6B", "OPT-6.6B", "Mistral-v0.3-7B"). Throws kInvalidInput naming the known models.
const ModelConfig& find_model(const std::string& name);
// The seven models of the paper's memory table, in its order.
std::vector<std::string> paper_models();
// `models`, or the paper's seven where it is empty (what the per-model experiments run).
std::vector<ModelConfig> models_or_paper_models(const std::vector<ModelConfig>& models);
// The paper's name for a zoo model ("OPT-2.7B" -> "OPT-2.6B"); the zoo name otherwise.
std::string paper_name(const std::string& zoo_name);

// What a parameter tensor is, which decides how each method stores it.
enum class TensorRole {
  kAttentionLinear,  // q, k, v, o projections: pruned by SLoPe
  kMlpLinear,        // up, gate, down projections: pruned by SLoPe and by FST
  kEmbedding,        // token, position and segment tables
  kLmHead,           // an untied output projection
  kOtherMatrix,      // unpruned matrices outside the decoder blocks (BERT pooler, projections)
  kVector,           // biases and norm parameters
};
bool is_pruned_linear(TensorRole role);

struct TensorSpec {
  std::string name;
  TensorRole role;
  int64_t rows;  // d_out for a linear (W is d_out x d_in); elements for a vector
  int64_t cols;  // d_in for a linear; 1 for a vector
  int64_t count; // how many such tensors the model holds (e.g. one per layer)
  int64_t elements() const { return rows * cols * count; }
};

// Every parameter tensor of `config` with `layers` transformer blocks (the config's own
// count when layers <= 0). A tied LM head is not listed (it is the token embedding).
std::vector<TensorSpec> parameter_tensors(const ModelConfig& config, int64_t layers = 0);
int64_t parameter_count(const ModelConfig& config, int64_t layers = 0);

}  // namespace slope
