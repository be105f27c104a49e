#include <gtest/gtest.h>

#include "slope/model/decoder_linears.hpp"

namespace slope {
namespace {

TEST(DecoderLinears, OptFusesQkvAndKeepsUpAndDown) {
  const auto l = decoder_linears(find_model("OPT-2.7B"));
  ASSERT_EQ(l.size(), 4u);
  EXPECT_EQ(l[0].name, "qkv_proj");
  EXPECT_EQ(l[0].d_out, 3 * 2560);
  EXPECT_EQ(l[0].d_in, 2560);
  EXPECT_EQ(l[0].projections(), 3);
  EXPECT_EQ(l[0].projection_rows, (std::vector<int64_t>{2560, 2560, 2560}));
  EXPECT_EQ(l[1].name, "o_proj");
  EXPECT_EQ(l[2].name, "up_proj");
  EXPECT_EQ(l[2].d_out, 10240);
  EXPECT_EQ(l[2].projections(), 1);
  EXPECT_TRUE(l[2].projection_rows.empty());
  EXPECT_EQ(l[3].name, "down_proj");
  EXPECT_EQ(l[3].d_out, 2560);
  EXPECT_EQ(l[3].d_in, 10240);
}

TEST(DecoderLinears, GroupedQueryAttentionAndGatedMlp) {
  // LLaMA-3-8B: 32 query heads and 8 key/value heads of 128, a gated MLP of 14336.
  const auto l = decoder_linears(find_model("LLaMA-3-8B"));
  ASSERT_EQ(l.size(), 4u);
  EXPECT_EQ(l[0].d_out, 4096 + 2 * 1024);
  EXPECT_EQ(l[0].projection_rows, (std::vector<int64_t>{4096, 1024, 1024}));
  EXPECT_EQ(l[1].d_in, 4096);
  EXPECT_EQ(l[2].name, "gate_up_proj");
  EXPECT_EQ(l[2].d_out, 2 * 14336);
  EXPECT_EQ(l[2].projections(), 2);
  EXPECT_EQ(l[2].projection_rows, (std::vector<int64_t>{14336, 14336}));
  EXPECT_EQ(l[3].d_in, 14336);
}

// The fused products hold exactly the pruned linear weights the memory model counts per layer.
TEST(DecoderLinears, CoverEveryPrunedWeightOfABlock) {
  for (const ModelConfig& m : model_zoo()) {
    int64_t fused = 0, counted = 0;
    for (const auto& l : decoder_linears(m)) fused += l.d_out * l.d_in;
    for (const auto& t : parameter_tensors(m, 1))
      if (is_pruned_linear(t.role)) counted += t.rows * t.cols * t.count;
    EXPECT_EQ(fused, counted) << m.name;
  }
}

}  // namespace
}  // namespace slope
