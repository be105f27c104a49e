#include <memory>
#include <string>

#include "gpu_test.hpp"
#include "slope/core/nm_prune.hpp"
#include "slope/core/random.hpp"
#include "slope/core/tuning_cache.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/sparse_engine.hpp"

namespace slope::testing {
namespace {

// The engine runs whichever kernel configuration cuSPARSELt's search (or its own re-timing)
// found fastest, and which one that is depends on the GPU, the machine and the moment: every
// configuration this cuSPARSELt offers for a shape must therefore compute the product.
struct ConfigCase {
  DType dtype;
  int64_t t, m, k;
  gpu::OutputLayout output;
};

class KernelConfigurations : public GpuTest, public ::testing::WithParamInterface<ConfigCase> {};

TEST_P(KernelConfigurations, EveryOneComputesTheProduct) {
  const ConfigCase c = GetParam();
  const bool token_out = c.output == gpu::OutputLayout::kTokenMajor;
  const MatrixF x = random_matrix(c.t, c.k, 31 + c.m, c.dtype);
  const MatrixF w = prune(random_matrix(c.m, c.k, 37 + c.k, c.dtype), {2, 4}, PruneAxis::kRows);
  const MatrixF want = token_out ? matmul_nt(x, w) : transpose(matmul_nt(x, w));
  const int64_t rows = token_out ? c.t : c.m, cols = token_out ? c.m : c.t;
  gpu::DeviceBuffer dw = gpu::upload(w, c.dtype, stream_), dx = gpu::upload(x, c.dtype, stream_);
  gpu::DeviceBuffer y(c.t * c.m * 2);

  gpu::SparseShape shape;
  shape.m = c.m;
  shape.k = c.k;
  shape.n = c.t;
  shape.dtype = c.dtype;
  shape.output = c.output;
  const gpu::SparseLtContext ctx;
  const int count = gpu::SparsePlan(ctx, shape).config_count();
  ASSERT_GT(count, 0);
  int ran = 0;
  std::string wrong;
  for (int id = 0; id < count; ++id) {
    TuningEntry entry;
    entry.config_id = id;
    entry.split_k = -1;  // cuSPARSELt's own split for the configuration, as the engine runs them
    std::unique_ptr<gpu::SparsePlan> plan;
    try {
      plan = std::make_unique<gpu::SparsePlan>(ctx, shape, &entry);
    } catch (const Error&) {
      continue;  // a configuration this shape cannot take; the engine skips it too
    }
    // A token-major output's kernels read W compressed through their own plan.
    auto cw = token_out ? std::make_unique<gpu::CompressedWeight>(*plan)
                        : std::make_unique<gpu::CompressedWeight>(ctx, c.m, c.k, c.dtype);
    cw->compress(dw.get(), stream_);
    gpu::poison(y.get(), c.t * c.m, stream_);
    plan->matmul(cw->data(), dx.get(), y.get(), stream_);
    const Comparison got = compare(gpu::download(y.get(), rows, cols, c.dtype, stream_), want,
                                   output_rtol(c.dtype), output_rtol(c.dtype));
    ++ran;
    if (!got.ok) wrong += " " + std::to_string(id) + " (relative error " + std::to_string(got.rel_fro_error) + ")";
  }
  EXPECT_GT(ran, 0);
  EXPECT_TRUE(wrong.empty()) << "of " << ran << " configurations run, these computed another product:" << wrong;
}

INSTANTIATE_TEST_SUITE_P(Shapes, KernelConfigurations,
                         ::testing::Values(ConfigCase{DType::kF16, 48, 80, 208, gpu::OutputLayout::kTokenMajor},
                                           ConfigCase{DType::kF16, 48, 80, 208, gpu::OutputLayout::kFeatureMajor},
                                           ConfigCase{DType::kBF16, 112, 208, 400, gpu::OutputLayout::kTokenMajor}),
                         [](const auto& info) {
                           const ConfigCase& c = info.param;
                           return std::string(to_string(c.dtype)) + "_t" + std::to_string(c.t) + "_m" +
                                  std::to_string(c.m) + "_k" + std::to_string(c.k) +
                                  (c.output == gpu::OutputLayout::kTokenMajor ? "_tokenmajorout" : "");
                         });

}  // namespace
}  // namespace slope::testing
