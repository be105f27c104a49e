#include "gpu_test.hpp"
#include "slope/core/random.hpp"
#include "slope/gpu/dense_gemm.hpp"

namespace slope::testing {
namespace {

class DenseGemmTest : public GpuTest, public ::testing::WithParamInterface<DType> {};

TEST_P(DenseGemmTest, LinearMatchesTheCpuWithAndWithoutBias) {
  const DType d = GetParam();
  const int64_t t = 48, n = 80, k = 208;
  const MatrixF x = random_matrix(t, k, 1, d), w = random_matrix(n, k, 2, d);
  MatrixF b_m = random_matrix(1, n, 3, d);
  const std::vector<float> bias = b_m.data;
  gpu::DeviceBuffer dx = gpu::upload(x, d, stream_), dw = gpu::upload(w, d, stream_), db = gpu::upload(b_m, d, stream_);
  gpu::DeviceBuffer y(t * n * 2);
  gpu::DenseGemmCache cache(true);
  gpu::poison(y.get(), t * n, stream_);
  cache.get(gpu::linear_shape(t, n, k, d), stream_).run(dw.get(), dx.get(), y.get(), stream_);
  expect_close(gpu::download(y.get(), t, n, d, stream_), linear_forward(x, w, nullptr), d);
  gpu::poison(y.get(), t * n, stream_);
  cache.get(gpu::linear_shape(t, n, k, d, true), stream_).run(dw.get(), dx.get(), y.get(), stream_, 1.0f, 0.0f, db.get());
  expect_close(gpu::download(y.get(), t, n, d, stream_), linear_forward(x, w, &bias), d);
}

TEST_P(DenseGemmTest, GradientLayoutsMatchTheCpu) {
  const DType d = GetParam();
  const int64_t t = 64, n = 48, k = 80;
  const MatrixF x = random_matrix(t, k, 4, d), w = random_matrix(n, k, 5, d), dy = random_matrix(t, n, 6, d);
  gpu::DeviceBuffer gx = gpu::upload(x, d, stream_), gw = gpu::upload(w, d, stream_), gdy = gpu::upload(dy, d, stream_);
  gpu::DeviceBuffer dx(t * k * 2), dw(n * k * 2);
  gpu::DenseGemmCache cache(false);
  // dX (t x k) = dY W: column-major dX^T (k x t) = W^T (stored k x n, op N) dY^T (n x t, op N).
  gpu::GemmShape sx{gpu::Op::kN, gpu::Op::kN, k, t, n, k, n, k, d, false};
  cache.get(sx, stream_).run(gw.get(), gdy.get(), dx.get(), stream_);
  expect_close(gpu::download(dx.get(), t, k, d, stream_), linear_grad_input(dy, w), d);
  // dW (n x k) = dY^T X: column-major dW^T (k x n) = X^T (k x t, op N) dY (stored n x t, op T).
  gpu::GemmShape sw{gpu::Op::kN, gpu::Op::kT, k, n, t, k, n, k, d, false};
  cache.get(sw, stream_).run(gx.get(), gdy.get(), dw.get(), stream_);
  expect_close(gpu::download(dw.get(), n, k, d, stream_), linear_grad_weight(dy, x), d);
  // beta = 1 accumulates into D.
  cache.get(sw, stream_).run(gx.get(), gdy.get(), dw.get(), stream_, 1.0f, 1.0f);
  MatrixF twice = linear_grad_weight(dy, x);
  for (auto& v : twice.data) v *= 2;
  expect_close(gpu::download(dw.get(), n, k, d, stream_), twice, d);
}

TEST_P(DenseGemmTest, FeatureMajorTwinOfTheSparseProduct) {
  const DType d = GetParam();
  const int64_t t = 48, n = 80, k = 112;
  const MatrixF x = random_matrix(t, k, 7, d), w = random_matrix(n, k, 8, d);
  const MatrixF want = transpose(matmul_nt(x, w));
  gpu::DenseGemmCache cache(false);
  gpu::DeviceBuffer dw = gpu::upload(w, d, stream_), y(t * n * 2);
  for (bool token_major : {true, false}) {
    gpu::DeviceBuffer dx = gpu::upload(token_major ? x : transpose(x), d, stream_);
    gpu::poison(y.get(), t * n, stream_);
    cache.get(gpu::feature_major_shape(t, n, k, d, token_major), stream_).run(dx.get(), dw.get(), y.get(), stream_);
    expect_close(gpu::download(y.get(), n, t, d, stream_), want, d);
    // The token-major twin writes Y itself.
    gpu::poison(y.get(), t * n, stream_);
    cache.get(gpu::token_major_output_shape(t, n, k, d, token_major), stream_).run(dw.get(), dx.get(), y.get(), stream_);
    expect_close(gpu::download(y.get(), t, n, d, stream_), transpose(want), d);
  }
}

// A thin product (T^T = L^T X^T, the low-rank adapter's first half: few output tiles, long
// K): tuning adds split-K variants of cuBLASLt's kernels, and whichever wins must compute
// the product, also when it accumulates (beta = 1).
TEST_P(DenseGemmTest, TunedThinProductWithSplitKCandidatesMatchesTheCpu) {
  const DType d = GetParam();
  const int64_t t = 112, r = 48, k = 1040;
  const MatrixF x = random_matrix(t, k, 9, d), lt = random_matrix(r, k, 10, d, 0.25f);
  gpu::DeviceBuffer dx = gpu::upload(x, d, stream_), dl = gpu::upload(lt, d, stream_), y(t * r * 2);
  gpu::DenseGemmCache cache(true);
  const gpu::DenseGemm& g = cache.get(gpu::linear_shape(t, r, k, d), stream_);
  EXPECT_GT(g.heuristic_candidates(), 0);
  EXPECT_GT(g.split_k_candidates(), 0);
  gpu::poison(y.get(), t * r, stream_);
  g.run(dl.get(), dx.get(), y.get(), stream_);
  const MatrixF want = linear_forward(x, lt, nullptr);
  expect_close(gpu::download(y.get(), t, r, d, stream_), want, d);
  g.run(dl.get(), dx.get(), y.get(), stream_, 1.0f, 1.0f);
  MatrixF twice = want;
  for (auto& v : twice.data) v *= 2;
  expect_close(gpu::download(y.get(), t, r, d, stream_), twice, d);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, DenseGemmTest, ::testing::Values(DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace slope::testing
