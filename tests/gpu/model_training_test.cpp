// `slope model --mode training`'s experiment: a small model with grouped-query attention and
// a gated MLP, whose projections each read an input of their own, runs every phase and whole
// training steps; one of the paper's models gets the paper's training speedup on its total
// and step rows. (The phases'
// products are checked against the CPU in slope_linear_test.)
#include <cmath>

#include "gpu_test.hpp"
#include "slope/experiments/model_training_experiment.hpp"
#include "tiny_models.hpp"

namespace slope::testing {
namespace {

class ModelTrainingTest : public GpuTest {};

TEST_F(ModelTrainingTest, EveryPhaseOfEveryModelGetsARow) {
  ModelTrainingOptions o;
  o.models = {tiny_gated_model(), find_model("OPT-2.7B")};
  o.tokens = 144;
  o.accumulation = 2;
  o.samples = 3;
  gpu::SparseEngine engine(nullptr, gpu::SearchPolicy::kDefault);
  gpu::DenseGemmCache dense;
  Metadata summary;
  const Table t = run_model_training_experiment(o, engine, dense, summary, nullptr);
  ASSERT_EQ(t.rows.size(), 10u);
  const char* phases[] = {"forward", "grad_input", "grad_weight", "total", "step"};
  for (size_t r = 0; r < 10; ++r) {
    EXPECT_EQ(t.text(r, "model"), r < 5 ? "tiny-gqa" : "OPT-2.7B");
    EXPECT_EQ(t.text(r, "phase"), phases[r % 5]);
    EXPECT_EQ(t.number(r, "accumulation"), 2);
    EXPECT_GT(t.number(r, "dense_ms"), 0.0);
    EXPECT_GT(t.number(r, "sparse_ms"), 0.0);
    EXPECT_NEAR(t.number(r, "speedup"), t.number(r, "dense_ms") / t.number(r, "sparse_ms"),
                0.5 * t.number(r, "speedup"));  // a median of ratios, near the ratio of medians
    const bool has_paper_value = r >= 8;          // OPT-2.7B's total and step
    EXPECT_EQ(std::isnan(t.number(r, "paper_speedup")), !has_paper_value) << r;
  }
  EXPECT_DOUBLE_EQ(t.number(8, "paper_speedup"), 1.13);  // the paper's OPT-2.6B
  EXPECT_DOUBLE_EQ(t.number(3, "ceiling"), 1.5);
  EXPECT_TRUE(std::isnan(t.number(4, "ceiling")));
  // A step is `accumulation` micro-batches of the total's work plus the optimizer.
  for (size_t r : {4u, 9u}) EXPECT_GT(t.number(r, "dense_ms"), 1.5 * t.number(r - 1, "dense_ms")) << r;
  EXPECT_TRUE(summary_number(summary, "speedup_geomean").has_value());
  EXPECT_TRUE(summary_number(summary, "step_speedup_geomean_acc2").has_value());
}

}  // namespace
}  // namespace slope::testing
