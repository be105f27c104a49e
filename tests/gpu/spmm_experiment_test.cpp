// `slope spmm`'s experiment on one small hidden size: a row per shape, each product checked
// against dense on the same pruned weights, and each row naming the kernel configurations it
// timed. (The products themselves are checked against the CPU in sparse_matmul_test.)
#include <cctype>
#include <string>

#include "gpu_test.hpp"
#include "slope/experiments/spmm_experiment.hpp"

namespace slope::testing {
namespace {

class SpmmExperimentTest : public GpuTest {};

// "40", "42+34" (one id per part) or "40x4" (one id for all of 4 parts).
bool is_config_list(const std::string& s, int64_t parts) {
  if (s.empty()) return false;
  if (const size_t x = s.find('x'); x != std::string::npos) return x > 0 && s.substr(x + 1) == std::to_string(parts);
  int64_t ids = 1;
  for (char c : s) {
    if (c == '+') ++ids;
    else if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return ids == parts;
}

TEST_F(SpmmExperimentTest, OddHiddenSizeGetsEveryShapeWithItsConfigurations) {
  SpmmOptions o;
  o.hidden = {208};  // a multiple of 16, not of 32
  o.tokens = 96;
  o.samples = 2;
  gpu::SparseEngine engine(nullptr, gpu::SearchPolicy::kDefault);
  gpu::DenseGemmCache dense;
  Metadata summary;
  const Table t = run_spmm_experiment(o, engine, dense, summary, nullptr);
  ASSERT_EQ(t.rows.size(), 4u);
  const char* shapes[] = {"attention", "upsample", "downsample", "upsample_tiled"};
  for (size_t r = 0; r < 4; ++r) {
    EXPECT_EQ(t.text(r, "shape"), shapes[r]);
    EXPECT_LE(t.number(r, "rel_error"), 1e-3) << shapes[r];
    EXPECT_GT(t.number(r, "speedup"), 0.0) << shapes[r];
    const auto parts = static_cast<int64_t>(t.number(r, "tiles"));
    EXPECT_TRUE(is_config_list(t.text(r, "configs"), parts)) << shapes[r] << ": " << t.text(r, "configs");
    // W as stored: half the values plus 4 bits of metadata per group of four (cuSPARSELt
    // pads the metadata to whole tiles), less than the dense 2 bytes per element.
    const double m = t.number(r, "m"), k = t.number(r, "k"), weight_bytes = t.number(r, "weight_bytes");
    EXPECT_GE(weight_bytes, m * k + m * k / 8) << shapes[r];
    EXPECT_LT(weight_bytes, 2 * m * k) << shapes[r];
    // Each rate is its product's bytes over its own time.
    const double xy_bytes = 2 * 96 * (m + k);
    EXPECT_NEAR(t.number(r, "dense_gbps") * t.number(r, "dense_ms") * 1e6, xy_bytes + 2 * m * k, 1e-6 * xy_bytes)
        << shapes[r];
    EXPECT_NEAR(t.number(r, "sparse_gbps") * t.number(r, "sparse_ms") * 1e6, xy_bytes + weight_bytes,
                1e-6 * xy_bytes)
        << shapes[r];
  }
  EXPECT_EQ(t.number(3, "tiles"), 4);  // d -> 4d in four d x d tiles
  EXPECT_TRUE(summary_number(summary, "geomean_speedup").has_value());
  EXPECT_GT(summary_number(summary, "hbm_copy_gbps").value_or(0.0), 0.0);
  EXPECT_GT(summary_number(summary, "sparse_hbm_fraction_max").value_or(0.0), 0.0);
}

}  // namespace
}  // namespace slope::testing
