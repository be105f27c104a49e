// slope's small kernels of the training and inference layers, each against the CPU on its
// own: the layer tests run them only between cuSPARSELt products, which compute-sanitizer's
// racecheck and synccheck cannot run (scripts/gpu-sanitize), so these tests are where those
// tools see them.
#include <string>

#include "gpu_test.hpp"
#include "slope/core/dtype.hpp"
#include "slope/core/random.hpp"
#include "slope/gpu/kernels.hpp"

namespace slope::testing {
namespace {

class LayerKernels : public GpuTest, public ::testing::WithParamInterface<DType> {};

// Equal value for value: compare() with no tolerance names how many differ and the worst.
void expect_exact(const MatrixF& got, const MatrixF& want) {
  const Comparison c = compare(got, want, 0.0, 0.0);
  EXPECT_TRUE(c.ok) << c.worst;
}

// Shapes that leave partial 32 x 32 tiles in both directions, a single row, and whole tiles.
TEST_P(LayerKernels, TransposeMatchesTheCpuExactly) {
  const DType d = GetParam();
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{75, 131}, {1, 33}, {64, 32}}) {
    SCOPED_TRACE(std::to_string(rows) + " x " + std::to_string(cols));
    const MatrixF in = random_matrix(rows, cols, 5 + rows, d);
    gpu::DeviceBuffer din = gpu::upload(in, d, stream_), dout(rows * cols * 2);
    gpu::poison(dout.get(), rows * cols, stream_);
    gpu::transpose_16bit(din.get(), dout.get(), rows, cols, stream_);
    expect_exact(gpu::download(dout.get(), cols, rows, d, stream_), transpose(in));
  }
}

// One block per row; more columns than threads, fewer than one warp, and both ways of writing.
TEST_P(LayerKernels, RowSumsMatchTheCpu) {
  const DType d = GetParam();
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{37, 300}, {5, 7}, {3, 1000}})
    for (bool accumulate : {false, true}) {
      SCOPED_TRACE(std::to_string(rows) + " x " + std::to_string(cols) + (accumulate ? " accumulating" : ""));
      const MatrixF in = random_matrix(rows, cols, 11 + cols, d);
      const MatrixF old = random_matrix(1, rows, 13 + rows, d);
      MatrixF want(1, rows);
      for (int64_t r = 0; r < rows; ++r) {
        double sum = accumulate ? old.data[static_cast<size_t>(r)] : 0.0;
        for (int64_t c = 0; c < cols; ++c) sum += in(r, c);
        want.data[static_cast<size_t>(r)] = static_cast<float>(sum);
      }
      gpu::DeviceBuffer din = gpu::upload(in, d, stream_), dout = gpu::upload(old, d, stream_);
      gpu::row_sums(din.get(), dout.get(), rows, cols, accumulate, d, stream_);
      expect_close(gpu::download(dout.get(), 1, rows, d, stream_), want, d);
    }
}

// Grid-stride loops: a count beyond the 8192 blocks of 256 threads the launch caps at, so
// that threads take several elements; zeros, negatives and NaN in the deciding tensor.
TEST_P(LayerKernels, ReluBackwardAndZeroWhereZeroMaskTheGradient) {
  const DType d = GetParam();
  const int64_t count = 8192 * 256 + 4099;
  MatrixF decider = random_matrix(1, count, 17, d);
  for (int64_t i = 0; i < count; i += 7) decider.data[static_cast<size_t>(i)] = 0.0f;
  decider.data[5] = NAN;
  const MatrixF grad = random_matrix(1, count, 19, d);
  gpu::DeviceBuffer dd = gpu::upload(decider, d, stream_);

  MatrixF relu_want = grad, zero_want = grad;
  for (int64_t i = 0; i < count; ++i) {
    const float v = decider.data[static_cast<size_t>(i)];
    if (!(v > 0.0f)) relu_want.data[static_cast<size_t>(i)] = 0.0f;  // the ReLU passed nothing back
    if (v == 0.0f) zero_want.data[static_cast<size_t>(i)] = 0.0f;     // a pruned parameter
  }
  gpu::DeviceBuffer g1 = gpu::upload(grad, d, stream_), g2 = gpu::upload(grad, d, stream_);
  gpu::relu_backward(g1.get(), dd.get(), count, d, stream_);
  gpu::zero_where_zero(g2.get(), dd.get(), count, d, stream_);
  expect_exact(gpu::download(g1.get(), 1, count, d, stream_), relu_want);
  expect_exact(gpu::download(g2.get(), 1, count, d, stream_), zero_want);
}

INSTANTIATE_TEST_SUITE_P(Types, LayerKernels, ::testing::Values(DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace slope::testing
