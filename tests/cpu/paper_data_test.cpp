#include <gtest/gtest.h>

#include "slope/core/paper_data.hpp"

namespace slope {
namespace {

TEST(PaperData, MemoryAndSpeedupTablesReadBack) {
  const auto memory = paper_data::memory_ratios();
  EXPECT_DOUBLE_EQ(memory.at({"OPT-13B", "SLoPe"}).at("inference_r0"), 0.51);
  const auto speedups = paper_data::speedups();
  EXPECT_EQ(speedups.size(), 14u);  // seven models, SLoPe and FST
  EXPECT_DOUBLE_EQ(speedups.at({"OPT-66B", "SLoPe"}).at("inference_speedup_r0"), 1.46);
  EXPECT_DOUBLE_EQ(speedups.at({"OPT-2.6B", "SLoPe"}).at("inference_speedup_r6.25pct"), 1.18);
  EXPECT_DOUBLE_EQ(speedups.at({"Mistral-v0.3-7B", "SLoPe"}).at("training_speedup"), 1.15);
}

TEST(PaperData, CellsByAdapterRatio) {
  EXPECT_EQ(paper_data::adapter_column_suffix(0.0), "r0");
  EXPECT_EQ(paper_data::adapter_column_suffix(1.0 / 64.0), "r1.56pct");
  EXPECT_EQ(paper_data::adapter_column_suffix(1.0 / 16.0), "r6.25pct");
  EXPECT_FALSE(paper_data::adapter_column_suffix(0.1).has_value());
  const auto speedups = paper_data::speedups();
  EXPECT_EQ(paper_data::cell(speedups, "OPT-13B", "SLoPe", "inference_speedup_r1.56pct"), 1.39);
  EXPECT_FALSE(paper_data::cell(speedups, "OPT-13B", "SLoPe", "no_such_column").has_value());
  EXPECT_FALSE(paper_data::cell(speedups, "GPT-2", "SLoPe", "training_speedup").has_value());
}

}  // namespace
}  // namespace slope
