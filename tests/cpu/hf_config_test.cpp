#include <gtest/gtest.h>

#include "slope/core/error.hpp"
#include "slope/model/hf_config.hpp"

namespace slope {
namespace {

const char* kOpt27 = R"({
  "_name_or_path": "facebook/opt-2.7b", "model_type": "opt", "hidden_size": 2560,
  "num_hidden_layers": 32, "ffn_dim": 10240, "num_attention_heads": 32, "vocab_size": 50272,
  "max_position_embeddings": 2048, "word_embed_proj_dim": 2560, "enable_bias": true,
  "do_layer_norm_before": true, "torch_dtype": "float16"})";

const char* kLlama3 = R"({
  "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
  "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32,
  "vocab_size": 128256, "max_position_embeddings": 8192, "tie_word_embeddings": false,
  "rms_norm_eps": 1e-05})";

std::string error_of(const std::string& text) {
  try {
    parse_hf_config(text, "cfg.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "message must be one line";
    return e.what();
  }
  ADD_FAILURE() << "no error for " << text;
  return "";
}

TEST(HfConfig, OptMatchesTheZooEntry) {
  const ModelConfig c = parse_hf_config(kOpt27, "opt.json");
  const ModelConfig& zoo = find_model("OPT-2.7B");
  EXPECT_EQ(c.name, "facebook/opt-2.7b");
  EXPECT_EQ(parameter_count(c), parameter_count(zoo));
  EXPECT_EQ(c.positions, 2050);
  EXPECT_TRUE(c.tied_lm_head);
}

TEST(HfConfig, LlamaMatchesTheZooEntry) {
  const ModelConfig c = parse_hf_config(kLlama3, "llama.json");
  EXPECT_EQ(c.kv_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_FALSE(c.tied_lm_head);
  EXPECT_EQ(parameter_count(c), parameter_count(find_model("LLaMA-3-8B")));
}

TEST(HfConfig, Gpt2AndBert) {
  const ModelConfig g = parse_hf_config(
      R"({"model_type":"gpt2","n_embd":768,"n_layer":12,"n_head":12,"vocab_size":50257,"n_positions":1024,"n_inner":null})",
      "gpt2.json");
  EXPECT_EQ(g.ffn, 3072);
  EXPECT_EQ(parameter_count(g), parameter_count(find_model("GPT-2")));
  const ModelConfig b = parse_hf_config(
      R"({"model_type":"bert","hidden_size":1024,"num_hidden_layers":24,"intermediate_size":4096,
          "num_attention_heads":16,"vocab_size":30522,"max_position_embeddings":512,"type_vocab_size":2})",
      "bert.json");
  EXPECT_EQ(parameter_count(b), parameter_count(find_model("BERT-large")));
}

TEST(HfConfig, MalformedAndIncompleteFilesNameTheProblem) {
  EXPECT_NE(error_of("{ not json").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of("[1, 2]").find("JSON object"), std::string::npos);
  EXPECT_NE(error_of(R"({"hidden_size": 8})").find("model_type"), std::string::npos);
  EXPECT_NE(error_of(R"({"model_type": "t5"})").find("unsupported model_type 't5'"), std::string::npos);
  EXPECT_NE(error_of(R"({"model_type": "llama", "hidden_size": 4096})").find("num_hidden_layers"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"model_type":"gpt2","n_embd":-5,"n_layer":1,"n_head":1,"vocab_size":1,"n_positions":1})")
                .find("'n_embd' must be positive"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"model_type":"gpt2","n_embd":"big","n_layer":1,"n_head":1,"vocab_size":1,"n_positions":1})")
                .find("must be an integer"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"model_type":"gpt2","n_embd":10,"n_layer":1,"n_head":3,"vocab_size":1,"n_positions":1})")
                .find("divisible"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_attention_heads":4,
                         "num_key_value_heads":4,"num_hidden_layers":2,"vocab_size":10,"tie_word_embeddings":"yes"})")
                .find("true or false"),
            std::string::npos);
}

TEST(HfConfig, MissingFileIsInvalidInput) {
  try {
    load_hf_config("/nonexistent/config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
  }
}

}  // namespace
}  // namespace slope
