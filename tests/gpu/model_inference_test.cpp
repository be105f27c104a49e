// `slope model`'s experiment on a small model with grouped-query attention and a gated MLP:
// every adapter form of every fused projection builds and runs, and the table is complete.
// (The forms' results are checked against the CPU in inference_linear_test.)
#include <cmath>

#include "gpu_test.hpp"
#include "slope/experiments/model_inference_experiment.hpp"
#include "tiny_models.hpp"

namespace slope::testing {
namespace {

class ModelInferenceTest : public GpuTest {};

TEST_F(ModelInferenceTest, SmallGatedModelGetsARowPerRatio) {
  ModelInferenceOptions o;
  o.models = {tiny_gated_model()};
  o.adapter_ratios = {0.0, 1.0 / 16.0};
  o.tokens = 272;
  o.samples = 3;
  o.max_rotation = 1;  // token-major plans take ~0.25 s each to make: one copy of the block
  gpu::SparseEngine engine(nullptr, gpu::SearchPolicy::kDefault);
  gpu::DenseGemmCache dense;
  Metadata summary;
  const Table t = run_model_inference_experiment(o, engine, dense, summary, nullptr);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.text(0, "form"), "none");
  EXPECT_EQ(t.number(1, "rank"), 16);
  for (size_t r = 0; r < 2; ++r) {
    EXPECT_EQ(t.text(r, "model"), "tiny-gqa");
    EXPECT_GT(t.number(r, "dense_ms"), 0.0);
    EXPECT_GT(t.number(r, "sparse_ms"), 0.0);
    EXPECT_TRUE(std::isnan(t.number(r, "paper_speedup")));  // not one of the paper's models
  }
  for (const char* form : {"merged_ms", "folded_ms"}) EXPECT_GT(t.number(1, form), 0.0) << form;
  EXPECT_TRUE(std::isfinite(t.number(1, "overhead_vs_r0")));
  // The estimate from side-by-side ratios: r = 0's own speedup, then that over 1 + overhead.
  const double r0_speedup = t.number(0, "dense_ms") / t.number(0, "sparse_ms");
  EXPECT_NEAR(t.number(0, "speedup_via_r0"), r0_speedup, 1e-9 * r0_speedup);
  EXPECT_NEAR(t.number(1, "speedup_via_r0"), r0_speedup / (1.0 + t.number(1, "overhead_vs_r0")), 1e-9 * r0_speedup);
  bool has_overhead = false, has_via_r0 = false;
  for (const auto& [key, value] : summary) {
    has_overhead |= key.rfind("adapter_overhead_geomean", 0) == 0;
    has_via_r0 |= key == "speedup_via_r0_geomean_ratio_0.0625";
  }
  EXPECT_TRUE(has_overhead);
  EXPECT_TRUE(has_via_r0);
}

}  // namespace
}  // namespace slope::testing
