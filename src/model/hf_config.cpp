#include "slope/model/hf_config.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "slope/core/error.hpp"

namespace slope {
namespace {

using nlohmann::json;

class Reader {
 public:
  Reader(const json& j, const std::string& source) : j_(j), source_(source) {}

  int64_t required(const char* key) const {
    if (!j_.contains(key)) fail(std::string("missing required field '") + key + "'");
    return positive(key, j_.at(key));
  }
  int64_t optional(const char* key, int64_t fallback) const {
    if (!j_.contains(key) || j_.at(key).is_null()) return fallback;
    return positive(key, j_.at(key));
  }
  bool flag(const char* key, bool fallback) const {
    if (!j_.contains(key) || j_.at(key).is_null()) return fallback;
    if (!j_.at(key).is_boolean()) fail(std::string("field '") + key + "' must be true or false");
    return j_.at(key).get<bool>();
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ErrorKind::kInvalidInput, source_ + ": " + what);
  }

 private:
  int64_t positive(const char* key, const json& v) const {
    if (!v.is_number_integer() && !(v.is_number_float() && v.get<double>() == static_cast<int64_t>(v.get<double>())))
      fail(std::string("field '") + key + "' must be an integer");
    const int64_t value = v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>());
    if (value <= 0) fail(std::string("field '") + key + "' must be positive (got " + std::to_string(value) + ")");
    return value;
  }
  const json& j_;
  const std::string& source_;
};

}  // namespace

ModelConfig parse_hf_config(const std::string& json_text, const std::string& source) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw Error(ErrorKind::kInvalidInput, source + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  if (!j.is_object()) throw Error(ErrorKind::kInvalidInput, source + ": expected a JSON object");
  const Reader r(j, source);
  if (!j.contains("model_type") || !j.at("model_type").is_string())
    r.fail("missing required field 'model_type'");
  const std::string type = j.at("model_type").get<std::string>();

  ModelConfig c;
  c.name = j.contains("_name_or_path") && j.at("_name_or_path").is_string()
               ? j.at("_name_or_path").get<std::string>()
               : source;
  if (type == "opt") {
    c.family = Family::kOpt;
    c.hidden = r.required("hidden_size");
    c.layers = r.required("num_hidden_layers");
    c.ffn = r.required("ffn_dim");
    c.heads = r.required("num_attention_heads");
    c.kv_heads = c.heads;
    c.vocab = r.required("vocab_size");
    c.positions = r.required("max_position_embeddings") + 2;  // OPT's offset of 2
    c.embed_proj_dim = r.optional("word_embed_proj_dim", c.hidden);
    c.tied_lm_head = r.flag("tie_word_embeddings", true);
    c.linear_bias = r.flag("enable_bias", true);
    c.norm_bias = true;
  } else if (type == "llama" || type == "mistral") {
    c.family = type == "llama" ? Family::kLlama : Family::kMistral;
    c.hidden = r.required("hidden_size");
    c.layers = r.required("num_hidden_layers");
    c.ffn = r.required("intermediate_size");
    c.heads = r.required("num_attention_heads");
    c.kv_heads = r.optional("num_key_value_heads", c.heads);
    c.vocab = r.required("vocab_size");
    c.positions = 0;
    c.tied_lm_head = r.flag("tie_word_embeddings", false);
    c.linear_bias = r.flag("attention_bias", false);
    c.gated_mlp = true;
    c.norm_bias = false;
  } else if (type == "gpt2") {
    c.family = Family::kGpt2;
    c.hidden = r.required("n_embd");
    c.layers = r.required("n_layer");
    c.heads = r.required("n_head");
    c.kv_heads = c.heads;
    c.ffn = r.optional("n_inner", 4 * c.hidden);
    c.vocab = r.required("vocab_size");
    c.positions = r.required("n_positions");
    c.tied_lm_head = r.flag("tie_word_embeddings", true);
  } else if (type == "bert") {
    c.family = Family::kBert;
    c.hidden = r.required("hidden_size");
    c.layers = r.required("num_hidden_layers");
    c.ffn = r.required("intermediate_size");
    c.heads = r.required("num_attention_heads");
    c.kv_heads = c.heads;
    c.vocab = r.required("vocab_size");
    c.positions = r.required("max_position_embeddings");
    c.token_types = r.optional("type_vocab_size", 2);
  } else {
    r.fail("unsupported model_type '" + type + "' (supported: opt, llama, mistral, gpt2, bert)");
  }
  c.head_dim = r.optional("head_dim", 0);
  if (c.head_dim == 0) {
    if (c.hidden % c.heads != 0) r.fail("hidden size is not divisible by the number of heads");
    c.head_dim = c.hidden / c.heads;
  }
  if (c.heads % c.kv_heads != 0) r.fail("attention heads are not divisible by key/value heads");
  return c;
}

ModelConfig load_hf_config(const std::string& path) {
  // A directory opens as a stream on Linux and reads as empty, which would be reported as
  // invalid JSON; a HuggingFace model's folder holds config.json, so say which file to name.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error(ErrorKind::kInvalidInput,
                "config file '" + path + "' is a directory (name the config.json inside it)");
  std::ifstream in(path);
  if (!in) throw Error(ErrorKind::kInvalidInput, "cannot read config file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_hf_config(text.str(), path);
}

}  // namespace slope
