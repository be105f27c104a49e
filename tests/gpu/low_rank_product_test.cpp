// The pipelined low-rank product against the CPU: every chunk count gives (X L) R, also when
// the pipeline is captured into a CUDA graph; a chunk count that does not cut the tokens into
// multiples of 16 is refused.
#include "gpu_test.hpp"
#include "slope/bench/timer.hpp"
#include "slope/core/random.hpp"
#include "slope/gpu/low_rank_product.hpp"

namespace slope::testing {
namespace {

struct Case {
  DType dtype;
  int64_t t, d_in, rank, d_out;
};

class LowRankProductTest : public GpuTest, public ::testing::WithParamInterface<Case> {};

TEST_P(LowRankProductTest, EveryChunkCountMatchesTheCpuReference) {
  const Case c = GetParam();
  const MatrixF x = random_matrix(c.t, c.d_in, 1, c.dtype);
  const MatrixF l = random_matrix(c.d_in, c.rank, 2, c.dtype, 0.5f);
  const MatrixF r = random_matrix(c.rank, c.d_out, 3, c.dtype, 0.5f);
  const MatrixF want = matmul_nn(matmul_nn(x, l), r);
  gpu::DeviceBuffer dx = gpu::upload(x, c.dtype, stream_), dl = gpu::upload(l, c.dtype, stream_);
  gpu::DeviceBuffer dr = gpu::upload(r, c.dtype, stream_), y(c.t * c.d_out * 2);
  gpu::DenseGemmCache dense(false);
  for (int chunks : {1, 2, 3}) {
    SCOPED_TRACE("chunks " + std::to_string(chunks));
    gpu::LowRankProduct product(dense, c.t, c.d_in, c.rank, c.d_out, c.dtype, chunks, stream_);
    gpu::poison(y.get(), c.t * c.d_out, stream_);
    product.run(dx.get(), dl.get(), dr.get(), y.get(), stream_);
    expect_close(gpu::download(y.get(), c.t, c.d_out, c.dtype, stream_), want, c.dtype, 3.0);
    // Captured into a graph and replayed (how the benchmarks run it): the same result.
    gpu::poison(y.get(), c.t * c.d_out, stream_);
    SLOPE_CHECK(cudaStreamSynchronize(stream_));
    const bench::Timing timing =
        bench::time_device([&](int) { product.run(dx.get(), dl.get(), dr.get(), y.get(), stream_); }, stream_, 2, 0);
    EXPECT_TRUE(timing.graph);
    gpu::poison(y.get(), c.t * c.d_out, stream_);
    SLOPE_CHECK(cudaStreamSynchronize(stream_));
    // Poisoned after the timing: this replay alone must write every element again.
    product.run(dx.get(), dl.get(), dr.get(), y.get(), stream_);
    expect_close(gpu::download(y.get(), c.t, c.d_out, c.dtype, stream_), want, c.dtype, 3.0);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, LowRankProductTest,
                         ::testing::Values(Case{DType::kF16, 96, 80, 24, 112}, Case{DType::kBF16, 96, 208, 16, 64},
                                           Case{DType::kF16, 192, 128, 7, 96}),
                         [](const auto& info) {
                           const Case& c = info.param;
                           return std::string(to_string(c.dtype)) + "_t" + std::to_string(c.t) + "_" +
                                  std::to_string(c.d_in) + "x" + std::to_string(c.rank) + "x" +
                                  std::to_string(c.d_out);
                         });

TEST_F(GpuTest, LowRankProductRefusesChunksThatDoNotCutTheTokens) {
  gpu::DenseGemmCache dense(false);
  EXPECT_THROW(gpu::LowRankProduct(dense, 96, 64, 16, 64, DType::kF16, 4, stream_), Error);  // 24 tokens each
  EXPECT_THROW(gpu::LowRankProduct(dense, 96, 64, 16, 64, DType::kF16, 0, stream_), Error);
}

}  // namespace
}  // namespace slope::testing
