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

}  // namespace
}  // namespace slope
