// `slope lowrank`'s experiment on one small hidden size: the paper's exact ranks for plain
// cuBLASLt, a padded rank for slope's way, and the reported rates counting the exact rank's
// bytes and flops only. (The products' layouts are checked against the CPU in
// lowrank_layouts_test.)
#include <cmath>
#include <optional>
#include <string>

#include "gpu_test.hpp"
#include "slope/experiments/lowrank_experiment.hpp"

namespace slope::testing {
namespace {

class LowRankExperimentTest : public GpuTest {};

TEST_F(LowRankExperimentTest, ExactRanksPlainPaddedRanksOursRatesOfTheExactRank) {
  LowRankOptions o;
  const int64_t d = 208, t = 96;  // d a multiple of 16, not of 32
  o.hidden = {d};
  o.tokens = t;
  o.samples = 2;
  o.ratios = {1.0, 0.05};
  Metadata summary;
  const Table table = run_lowrank_experiment(o, summary, nullptr);
  const std::optional<double> copy_gbps = summary_number(summary, "hbm_copy_gbps");
  ASSERT_TRUE(copy_gbps.has_value());
  EXPECT_GT(*copy_gbps, 0.0);
  EXPECT_GT(summary_number(summary, "dense_gemm_tflops").value_or(0.0), 0.0);
  ASSERT_EQ(table.rows.size(), 4u);  // per ratio: plain, then ours

  double full_ms[2] = {NAN, NAN};  // ratio 1.0's time, plain and ours
  for (size_t row = 0; row < 4; ++row) {
    const double ratio = table.number(row, "rank_ratio");
    const bool plain = table.text(row, "method") == "plain";
    EXPECT_EQ(plain, row % 2 == 0);
    const auto exact = static_cast<int64_t>(std::floor(ratio * d + 1e-9));  // 208 and 10
    const auto rank = static_cast<int64_t>(table.number(row, "rank"));
    if (plain) {
      EXPECT_EQ(rank, exact) << "plain cuBLASLt runs the paper's rank";
      EXPECT_EQ(table.text(row, "layout"), "token:L+R");  // the paper's way
    } else {
      // Padded with zeros to a multiple of 16 at least, of 128 at most.
      EXPECT_EQ(rank % 16, 0) << rank;
      EXPECT_GE(rank, exact);
      EXPECT_LE(rank, (exact + 127) / 128 * 128);
      EXPECT_NE(table.text(row, "candidates_ms").find("chosen r" + std::to_string(rank)), std::string::npos);
    }
    const double ms = table.number(row, "ms");
    ASSERT_GT(ms, 0.0);
    EXPECT_GT(table.number(row, "first_ms"), 0.0);
    EXPECT_GT(table.number(row, "second_ms"), 0.0);
    // Rates count the exact rank's work: X and Y, L and R, T written and read back.
    const double bytes = 2.0 * (2.0 * t * d + 2.0 * d * exact + 2.0 * t * exact);
    EXPECT_NEAR(table.number(row, "gbps"), bytes / ms * 1e-6, 1e-9 * bytes / ms);
    EXPECT_NEAR(table.number(row, "tflops"), 4.0 * t * d * exact / ms * 1e-9, 1e-9 * t * d * exact / ms);
    // The summary rounds the copy rate to a whole GB/s.
    EXPECT_NEAR(table.number(row, "hbm_fraction"), table.number(row, "gbps") / *copy_gbps,
                table.number(row, "hbm_fraction") * 0.51 / *copy_gbps);
    const double roofline = table.number(row, "roofline_fraction");
    EXPECT_GE(roofline, table.number(row, "hbm_fraction") * (1 - 1e-3));  // the floor is at least the bytes'
    EXPECT_DOUBLE_EQ(table.number(row, "ideal_speedup"), 1.0 / ratio);
    if (ratio == 1.0) {
      full_ms[row % 2] = ms;
      EXPECT_DOUBLE_EQ(table.number(row, "speedup_vs_full"), 1.0);
    } else {
      EXPECT_DOUBLE_EQ(table.number(row, "speedup_vs_full"), full_ms[row % 2] / ms);
    }
  }
}

}  // namespace
}  // namespace slope::testing
