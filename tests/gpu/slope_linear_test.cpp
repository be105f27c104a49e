#include "gpu_test.hpp"
#include "slope/core/random.hpp"
#include "slope/core/slope_reference.hpp"
#include "slope/gpu/slope_linear.hpp"

namespace slope::testing {
namespace {

struct Case {
  DType dtype;
  int64_t t, d_out, d_in;
  gpu::InputLayout input;
  bool bias;
};

class SlopeLinearTest : public GpuTest, public ::testing::WithParamInterface<Case> {};

TEST_P(SlopeLinearTest, ForwardAndBackwardMatchTheCpuOverMicroBatches) {
  const Case c = GetParam();
  const MatrixF w = random_matrix(c.d_out, c.d_in, 1, c.dtype);
  const MatrixF b = random_matrix(1, c.d_out, 2, c.dtype);
  SlopeLayerReference ref(w, c.bias ? b.data : std::vector<float>{});
  gpu::SparseEngine engine(nullptr);
  gpu::DenseGemmCache dense(false);
  gpu::TrainingWorkspace ws(engine, dense);
  gpu::SlopeLinear layer(ws, {c.d_out, c.d_in, c.t, c.dtype, c.input, c.bias, false}, stream_);
  gpu::DeviceBuffer dw = gpu::upload(w, c.dtype, stream_), db = gpu::upload(b, c.dtype, stream_);
  layer.init_weights(dw.get(), c.bias ? db.get() : nullptr, stream_);
  const bool token_major = c.input == gpu::InputLayout::kTokenMajor;
  gpu::DeviceBuffer y(c.d_out * c.t * 2), dx(c.d_in * c.t * 2);
  for (int micro = 0; micro < 3; ++micro) {
    const MatrixF x = random_matrix(c.t, c.d_in, 10 + micro, c.dtype);
    const MatrixF dy = random_matrix(c.t, c.d_out, 20 + micro, c.dtype);
    gpu::DeviceBuffer gx = gpu::upload(token_major ? x : transpose(x), c.dtype, stream_);
    gpu::DeviceBuffer gdy = gpu::upload(transpose(dy), c.dtype, stream_);  // dY^T, feature-major
    gpu::poison(y.get(), c.d_out * c.t, stream_);
    gpu::poison(dx.get(), c.d_in * c.t, stream_);
    layer.forward(gx.get(), y.get(), stream_);
    layer.backward(gx.get(), gdy.get(), dx.get(), micro > 0, stream_);
    const MatrixF want_dx = ref.backward(x, dy, micro > 0);
    SCOPED_TRACE("micro-batch " + std::to_string(micro));
    expect_close(gpu::download(y.get(), c.d_out, c.t, c.dtype, stream_), transpose(ref.forward(x)), c.dtype);
    expect_close(gpu::download(dx.get(), c.d_in, c.t, c.dtype, stream_), transpose(want_dx), c.dtype);
  }
  // Accumulated in 16-bit storage over three micro-batches: within 1e-2, as the issue asks.
  const MatrixF kept = gpu::download(layer.kept_grad(), 1, c.d_out * c.d_in / 2, c.dtype, stream_);
  EXPECT_LT(relative_error(kept, row_matrix(ref.kept_grad())), 1e-2);
  if (c.bias) {
    const MatrixF bg = gpu::download(layer.bias_grad(), 1, c.d_out, c.dtype, stream_);
    EXPECT_LT(relative_error(bg, row_matrix(ref.bias_grad())), 1e-2);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, SlopeLinearTest,
    ::testing::Values(Case{DType::kF16, 48, 80, 112, gpu::InputLayout::kTokenMajor, true},
                      Case{DType::kBF16, 64, 208, 96, gpu::InputLayout::kTokenMajor, false},
                      Case{DType::kF16, 32, 96, 384, gpu::InputLayout::kFeatureMajor, true},
                      Case{DType::kF16, 64, 384, 96, gpu::InputLayout::kTokenMajor, false}),
    [](const auto& info) {
      const Case& c = info.param;
      return std::string(to_string(c.dtype)) + "_t" + std::to_string(c.t) + "_" + std::to_string(c.d_out) + "x" +
             std::to_string(c.d_in) + (c.input == gpu::InputLayout::kTokenMajor ? "_tok" : "_feat") +
             (c.bias ? "_bias" : "");
    });

}  // namespace
}  // namespace slope::testing
