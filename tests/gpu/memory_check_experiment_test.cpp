// `slope memcheck`'s experiment on a paper model and a small one: the bytes slope allocates
// for two decoder layers' training and inference state agree with the memory model (`slope
// memory --protocol exact`).
#include <cmath>

#include "gpu_test.hpp"
#include "slope/experiments/memory_check_experiment.hpp"
#include "slope/model/model_config.hpp"
#include "tiny_models.hpp"

namespace slope::testing {
namespace {

class MemoryCheckExperimentTest : public GpuTest {};

TEST_F(MemoryCheckExperimentTest, AllocatedStateMatchesTheMemoryModel) {
  MemoryCheckOptions o;
  o.models = {find_model("OPT-2.7B"), tiny_gated_model()};
  o.layers = 2;
  gpu::SparseEngine engine(nullptr, gpu::SearchPolicy::kDefault);
  gpu::DenseGemmCache dense;
  const Table t = run_memory_check_experiment(o, engine, dense);
  ASSERT_EQ(t.rows.size(), 4u);  // per model: training, then inference
  for (size_t r = 0; r < 4; ++r) {
    const bool opt = r < 2, training = r % 2 == 0;
    EXPECT_EQ(t.text(r, "model"), opt ? "OPT-2.7B" : "tiny-gqa");
    EXPECT_EQ(t.text(r, "mode"), training ? "training" : "inference");
    const double measured = t.number(r, "measured_bytes"), model = t.number(r, "model_bytes");
    ASSERT_GT(model, 0.0);
    EXPECT_DOUBLE_EQ(t.number(r, "rel_diff"), (measured - model) / model);
    // A paper model: within 0.1% (0.06% measured). The small model's state is small beside
    // two things the memory model leaves out: cuSPARSELt pads the metadata of its 528-wide FFN
    // to whole 64 x 32 tiles (3.5 kB a layer), and every plan keeps its cuSPARSELt workspace
    // (SparsePlan). In inference, compressed weights alone, that came to 4.0% on the H200
    // (1421312 bytes against 1367168). A part left out or counted twice (the moments, W^{R,C},
    // the kept gradient) would move training by 10% or more.
    const double tolerance = opt ? 1e-3 : (training ? 0.01 : 0.05);
    EXPECT_LT(std::fabs(t.number(r, "rel_diff")), tolerance)
        << t.text(r, "model") << " " << t.text(r, "mode") << ": measured " << measured << " bytes, model " << model;
  }
  // Training keeps much more than inference (gradients, moments, W^{R,C}).
  EXPECT_GT(t.number(0, "measured_bytes"), 3 * t.number(1, "measured_bytes"));
  EXPECT_GT(t.number(2, "measured_bytes"), 3 * t.number(3, "measured_bytes"));
}

}  // namespace
}  // namespace slope::testing
