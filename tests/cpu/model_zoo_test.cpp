#include <gtest/gtest.h>

#include "slope/core/error.hpp"
#include "slope/model/model_config.hpp"
#include "slope/model/model_table.hpp"

namespace slope {
namespace {

// Published parameter counts of the zoo's models (within 1%).
TEST(ModelZoo, ParameterCountsMatchThePublishedSizes) {
  const std::vector<std::pair<std::string, double>> expected = {
      {"OPT-2.7B", 2.65e9},  {"OPT-6.7B", 6.66e9},   {"OPT-13B", 12.85e9},
      {"OPT-30B", 29.97e9},  {"OPT-66B", 65.7e9},    {"LLaMA-3-8B", 8.03e9},
      {"Mistral-7B-v0.3", 7.25e9}, {"GPT-2", 124.4e6}, {"BERT-large", 335.1e6}};
  for (const auto& [name, count] : expected)
    EXPECT_NEAR(parameter_count(find_model(name)) / count, 1.0, 0.01) << name;
}

TEST(ModelZoo, ExactGpt2Count) {
  // GPT-2 small has exactly 124,439,808 parameters.
  EXPECT_EQ(parameter_count(find_model("gpt-2")), 124439808);
}

TEST(ModelZoo, LookupByPaperNameAndErrors) {
  EXPECT_EQ(find_model("OPT-2.6B").name, "OPT-2.7B");
  EXPECT_EQ(find_model("mistral-v0.3-7b").name, "Mistral-7B-v0.3");
  try {
    find_model("OPT-1T");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("unknown model 'OPT-1T'"), std::string::npos);
  }
}

TEST(ModelZoo, PerModelExperimentsDefaultToThePapersSeven) {
  const auto paper = models_or_paper_models({});
  ASSERT_EQ(paper.size(), 7u);
  EXPECT_EQ(paper.front().name, "OPT-66B");  // the paper's table order
  EXPECT_EQ(paper_name(paper[4].name), "OPT-2.6B");
  EXPECT_EQ(paper.back().name, "Mistral-7B-v0.3");
  const auto given = models_or_paper_models({find_model("GPT-2")});
  ASSERT_EQ(given.size(), 1u);
  EXPECT_EQ(given.front().name, "GPT-2");
}

TEST(ModelZoo, LayerOverrideScalesOnlyBlocks) {
  const ModelConfig& m = find_model("OPT-66B");
  const int64_t one = parameter_count(m, 1), two = parameter_count(m, 2);
  const int64_t per_layer = two - one;
  EXPECT_EQ(per_layer, 12 * 9216LL * 9216 + 13 * 9216LL);
  EXPECT_EQ(one - per_layer, (50272LL + 2050) * 9216 + 2 * 9216);
}

TEST(ModelZoo, TableCarriesEachModelsArchitecture) {
  const Table t = model_table({find_model("OPT-66B"), find_model("LLaMA-3-8B")});
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.text(0, "model"), "OPT-66B");
  EXPECT_EQ(t.text(0, "family"), "opt");
  EXPECT_EQ(t.number(0, "hidden"), 9216);
  EXPECT_EQ(t.number(0, "layers"), 64);
  EXPECT_EQ(t.number(0, "ffn"), 4 * 9216);
  EXPECT_EQ(t.number(0, "heads"), 72);
  EXPECT_EQ(t.number(0, "head_dim"), 128);
  EXPECT_EQ(t.number(0, "positions"), 2050);
  EXPECT_EQ(t.number(0, "gated_mlp"), 0);
  EXPECT_EQ(t.text(0, "norm"), "layernorm");
  EXPECT_EQ(t.number(0, "tied_lm_head"), 1);
  EXPECT_EQ(t.number(0, "parameters"), static_cast<double>(parameter_count(find_model("OPT-66B"))));
  // Grouped-query attention, a gated MLP, RMSNorm, rotary positions and an untied head.
  EXPECT_EQ(t.text(1, "paper_model"), "LLaMA-3-8B");
  EXPECT_EQ(t.number(1, "heads"), 32);
  EXPECT_EQ(t.number(1, "kv_heads"), 8);
  EXPECT_EQ(t.number(1, "ffn"), 14336);
  EXPECT_EQ(t.number(1, "vocab"), 128256);
  EXPECT_EQ(t.number(1, "positions"), 0);
  EXPECT_EQ(t.number(1, "gated_mlp"), 1);
  EXPECT_EQ(t.text(1, "norm"), "rmsnorm");
  EXPECT_EQ(t.number(1, "tied_lm_head"), 0);
  EXPECT_EQ(t.number(1, "linear_bias"), 0);
}

}  // namespace
}  // namespace slope
