// `slope setup`'s experiment on two small weights: every cost it reports was measured (a time,
// not a placeholder), and the summary names the largest per-call host cost of the run.
#include <algorithm>
#include <cmath>
#include <string>

#include "gpu_test.hpp"
#include "slope/experiments/setup_experiment.hpp"

namespace slope::testing {
namespace {

class SetupExperimentTest : public GpuTest {};

TEST_F(SetupExperimentTest, EveryCostOfOneWeightIsMeasured) {
  SetupOptions o;
  o.hidden = {208, 336};  // multiples of 16, not of 32
  o.tokens = 96;
  o.samples = 2;
  gpu::SparseEngine engine(nullptr, gpu::SearchPolicy::kDefault);
  gpu::DenseGemmCache dense;
  Metadata summary;
  const Table t = run_setup_experiment(o, engine, dense, summary, nullptr);
  ASSERT_EQ(t.rows.size(), 2u);
  double largest_host_us = 0.0;
  for (size_t row = 0; row < 2; ++row) {
    EXPECT_EQ(t.number(row, "hidden"), o.hidden[row]);
    for (const char* column :
         {"plan_init_ms", "token_major_plan_init_ms", "token_major_next_plan_ms", "token_major_prepared_ms",
          "search_ms", "cache_hit_ms", "prune_compress_ms", "compress_gbps", "matmul_ms", "dense_matmul_ms",
          "default_alg_matmul_ms", "host_overhead_us", "dense_host_overhead_us"}) {
      const double v = t.number(row, column);
      EXPECT_TRUE(std::isfinite(v) && v > 0.0) << column << " = " << v;
    }
    // A shape's first token-major plan pays for the algorithm selection; later weights' do not.
    EXPECT_LT(t.number(row, "token_major_next_plan_ms"), t.number(row, "token_major_plan_init_ms"));
    EXPECT_LE(t.number(row, "host_overhead_min_us"), t.number(row, "host_overhead_us"));
    EXPECT_LE(t.number(row, "host_overhead_us"), t.number(row, "host_overhead_max_us"));
    largest_host_us = std::max(largest_host_us, t.number(row, "host_overhead_us"));
  }
  // Written with one decimal.
  EXPECT_NEAR(summary_number(summary, "host_overhead_us_largest").value_or(NAN), largest_host_us, 0.051);
}

}  // namespace
}  // namespace slope::testing
