// Architecture numbers from each model's public HuggingFace config.json.
#include <algorithm>
#include <cctype>

#include "slope/core/error.hpp"
#include "slope/model/model_config.hpp"

namespace slope {
namespace {

ModelConfig opt(const char* name, int64_t hidden, int64_t layers, int64_t heads) {
  ModelConfig c;
  c.name = name;
  c.family = Family::kOpt;
  c.hidden = hidden;
  c.layers = layers;
  c.ffn = 4 * hidden;
  c.heads = heads;
  c.kv_heads = heads;
  c.head_dim = hidden / heads;
  c.vocab = 50272;
  c.positions = 2048 + 2;  // OPT's learned position table keeps 2 extra rows (offset 2)
  c.embed_proj_dim = hidden;
  c.tied_lm_head = true;
  c.linear_bias = true;
  c.norm_bias = true;
  return c;
}

ModelConfig llama_like(const char* name, Family family, int64_t vocab) {
  ModelConfig c;
  c.name = name;
  c.family = family;
  c.hidden = 4096;
  c.layers = 32;
  c.ffn = 14336;
  c.heads = 32;
  c.kv_heads = 8;
  c.head_dim = 128;
  c.vocab = vocab;
  c.positions = 0;  // rotary embeddings: no table
  c.tied_lm_head = false;
  c.linear_bias = false;
  c.gated_mlp = true;
  c.norm_bias = false;  // RMSNorm
  return c;
}

ModelConfig gpt2() {
  ModelConfig c;
  c.name = "GPT-2";
  c.family = Family::kGpt2;
  c.hidden = 768;
  c.layers = 12;
  c.ffn = 3072;
  c.heads = 12;
  c.kv_heads = 12;
  c.head_dim = 64;
  c.vocab = 50257;
  c.positions = 1024;
  return c;
}

ModelConfig bert_large() {
  ModelConfig c;
  c.name = "BERT-large";
  c.family = Family::kBert;
  c.hidden = 1024;
  c.layers = 24;
  c.ffn = 4096;
  c.heads = 16;
  c.kv_heads = 16;
  c.head_dim = 64;
  c.vocab = 30522;
  c.positions = 512;
  c.token_types = 2;
  return c;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return s;
}

}  // namespace

const char* to_string(Family family) {
  switch (family) {
    case Family::kOpt: return "opt";
    case Family::kLlama: return "llama";
    case Family::kMistral: return "mistral";
    case Family::kGpt2: return "gpt2";
    case Family::kBert: return "bert";
  }
  return "?";
}

const std::vector<ModelConfig>& model_zoo() {
  static const std::vector<ModelConfig> zoo = {
      opt("OPT-2.7B", 2560, 32, 32),
      opt("OPT-6.7B", 4096, 32, 32),
      opt("OPT-13B", 5120, 40, 40),
      opt("OPT-30B", 7168, 48, 56),
      opt("OPT-66B", 9216, 64, 72),
      llama_like("LLaMA-3-8B", Family::kLlama, 128256),
      llama_like("Mistral-7B-v0.3", Family::kMistral, 32768),
      gpt2(),
      bert_large(),
  };
  return zoo;
}

std::vector<std::string> paper_models() {
  return {"OPT-66B", "OPT-30B", "OPT-13B", "OPT-6.7B", "OPT-2.7B", "LLaMA-3-8B", "Mistral-7B-v0.3"};
}

std::vector<ModelConfig> models_or_paper_models(const std::vector<ModelConfig>& models) {
  if (!models.empty()) return models;
  std::vector<ModelConfig> paper;
  for (const auto& name : paper_models()) paper.push_back(find_model(name));
  return paper;
}

std::string paper_name(const std::string& zoo_name) {
  if (zoo_name == "OPT-2.7B") return "OPT-2.6B";
  if (zoo_name == "OPT-6.7B") return "OPT-6.6B";
  if (zoo_name == "Mistral-7B-v0.3") return "Mistral-v0.3-7B";
  return zoo_name;
}

const ModelConfig& find_model(const std::string& name) {
  const std::string wanted = lower(name);
  for (const auto& c : model_zoo())
    if (lower(c.name) == wanted || lower(paper_name(c.name)) == wanted) return c;
  std::string known;
  for (const auto& c : model_zoo()) known += (known.empty() ? "" : ", ") + c.name;
  throw Error(ErrorKind::kInvalidInput, "unknown model '" + name + "' (known: " + known + ")");
}

bool is_pruned_linear(TensorRole role) {
  return role == TensorRole::kAttentionLinear || role == TensorRole::kMlpLinear;
}

std::vector<TensorSpec> parameter_tensors(const ModelConfig& c, int64_t layers) {
  const int64_t n = layers > 0 ? layers : c.layers;
  const int64_t h = c.hidden;
  const int64_t q_out = c.heads * c.head_dim;
  const int64_t kv_out = c.kv_heads * c.head_dim;
  std::vector<TensorSpec> t;
  const int64_t embed_dim = c.embed_proj_dim > 0 ? c.embed_proj_dim : h;

  t.push_back({"embed_tokens", TensorRole::kEmbedding, c.vocab, embed_dim, 1});
  if (c.positions > 0) t.push_back({"embed_positions", TensorRole::kEmbedding, c.positions, h, 1});
  if (c.token_types > 0) t.push_back({"embed_token_types", TensorRole::kEmbedding, c.token_types, h, 1});
  if (embed_dim != h) {
    t.push_back({"project_in", TensorRole::kOtherMatrix, h, embed_dim, 1});
    t.push_back({"project_out", TensorRole::kOtherMatrix, embed_dim, h, 1});
  }

  t.push_back({"q_proj", TensorRole::kAttentionLinear, q_out, h, n});
  t.push_back({"k_proj", TensorRole::kAttentionLinear, kv_out, h, n});
  t.push_back({"v_proj", TensorRole::kAttentionLinear, kv_out, h, n});
  t.push_back({"o_proj", TensorRole::kAttentionLinear, h, q_out, n});
  if (c.gated_mlp) t.push_back({"gate_proj", TensorRole::kMlpLinear, c.ffn, h, n});
  t.push_back({"up_proj", TensorRole::kMlpLinear, c.ffn, h, n});
  t.push_back({"down_proj", TensorRole::kMlpLinear, h, c.ffn, n});

  const int64_t norm_params = c.norm_bias ? 2 * h : h;
  int64_t block_vectors = 2 * norm_params;  // attention norm and MLP norm
  if (c.linear_bias) block_vectors += q_out + 2 * kv_out + h + (c.gated_mlp ? 2 : 1) * c.ffn + h;
  t.push_back({"block_biases_and_norms", TensorRole::kVector, block_vectors, 1, n});

  int64_t other_vectors = 0;
  if (c.family == Family::kBert) {
    other_vectors += norm_params;  // embedding LayerNorm
    t.push_back({"pooler", TensorRole::kOtherMatrix, h, h, 1});
    other_vectors += h;  // pooler bias
  } else {
    other_vectors += norm_params;  // final norm
  }
  t.push_back({"other_biases_and_norms", TensorRole::kVector, other_vectors, 1, 1});

  if (!c.tied_lm_head) t.push_back({"lm_head", TensorRole::kLmHead, c.vocab, embed_dim, 1});
  return t;
}

int64_t parameter_count(const ModelConfig& config, int64_t layers) {
  int64_t total = 0;
  for (const auto& spec : parameter_tensors(config, layers)) total += spec.elements();
  return total;
}

}  // namespace slope
