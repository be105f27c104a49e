// A few full training steps of a SLoPe layer on the GPU against the CPU reference trajectory:
// micro-batches with gradient accumulation, clipped AdamW, the in-place refresh, one mask
// change and the adapter's switch-on; then the export to the inference layer.
#include <cmath>

#include "gpu_test.hpp"
#include "slope/core/adamw.hpp"
#include "slope/core/random.hpp"
#include "slope/core/slope_reference.hpp"
#include "slope/gpu/adamw.hpp"
#include "slope/gpu/inference_linear.hpp"
#include "slope/gpu/slope_linear.hpp"

namespace slope::testing {
namespace {

double sum_squares(const std::vector<float>& v, float scale) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x * scale) * (x * scale);
  return s;
}

// The CPU optimizer's state for one tensor.
struct Moments {
  std::vector<float> m, v;
  explicit Moments(size_t n = 0) : m(n, 0.0f), v(n, 0.0f) {}
};

class TrainingStep : public GpuTest {
 protected:
  static constexpr int64_t kOut = 64, kIn = 128, kTokens = 48;
  static constexpr DType kType = DType::kF16;
};

TEST_F(TrainingStep, TrajectoryMatchesTheCpuThroughAMaskChangeAndTheAdapterSwitchOn) {
  const MatrixF w = random_matrix(kOut, kIn, 1, kType), b = random_matrix(1, kOut, 2, kType);
  SlopeLayerReference ref(w, b.data);
  gpu::SparseEngine engine(nullptr);
  gpu::DenseGemmCache dense(false);
  gpu::TrainingWorkspace ws(engine, dense);
  gpu::SlopeLinear layer(ws, {kOut, kIn, kTokens, kType, gpu::InputLayout::kTokenMajor, true, false}, stream_);
  gpu::DeviceBuffer dw = gpu::upload(w, kType, stream_), db = gpu::upload(b, kType, stream_);
  layer.init_weights(dw.get(), db.get(), stream_);

  AdamWConfig config;
  config.lr = 1e-2f;
  config.weight_decay = 0.1f;
  config.max_grad_norm = 5.0f;  // below the gradients' norm: clipping is exercised
  auto opt = std::make_unique<gpu::AdamW>(kType, config);
  layer.add_to(*opt, "layer");
  const int64_t kept_count = kOut * kIn / 2;
  Moments mw(kept_count), mb(kOut), ml, mr;
  const int accumulation = 2, mask_change_freq = 2, adapter_step = 3, steps = 4;
  const float grad_scale = 1.0f / accumulation;
  gpu::DeviceBuffer y(kOut * kTokens * 2), dx(kIn * kTokens * 2);
  for (int step = 1; step <= steps; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    if (step == adapter_step) {
      // Switch-on: L random, R zero; the optimizer is rebuilt with the adapter's tensors
      // and the old tensors' moments are carried over by a fresh CPU mirror below.
      layer.enable_adapter(16, 77, 0.1f, stream_);
      layer.adapter()->add_to(*opt, "layer");
      const MatrixF lt = gpu::download(layer.adapter()->l_t(), 16, kIn, kType, stream_);
      ref.enable_adapter(lt, MatrixF(16, kOut));
      EXPECT_EQ(ref.adapter_lt().data, lt.data);  // the GPU's L^T is already 2:4
      ml = Moments(16 * kIn);
      mr = Moments(16 * kOut);
    }
    for (int micro = 0; micro < accumulation; ++micro) {
      const MatrixF x = random_matrix(kTokens, kIn, 100 * step + micro, kType);
      const MatrixF dy = random_matrix(kTokens, kOut, 200 * step + micro, kType);
      gpu::DeviceBuffer gx = gpu::upload(x, kType, stream_), gdy = gpu::upload(transpose(dy), kType, stream_);
      layer.forward(gx.get(), y.get(), stream_);
      layer.backward(gx.get(), gdy.get(), dx.get(), micro > 0, stream_);
      const MatrixF want_dx = ref.backward(x, dy, micro > 0);
      SCOPED_TRACE("micro-batch " + std::to_string(micro));
      expect_close(gpu::download(y.get(), kOut, kTokens, kType, stream_), transpose(ref.forward(x)), kType, 2.0);
      expect_close(gpu::download(dx.get(), kIn, kTokens, kType, stream_), transpose(want_dx), kType, 2.0);
    }
    // The gradients agree with the CPU's to 16-bit accumulation; the CPU optimizer then runs
    // on the GPU's own gradients, so that both trajectories stay one rounding apart.
    const MatrixF g_kept = gpu::download(layer.kept_grad(), 1, kept_count, kType, stream_);
    const MatrixF g_bias = gpu::download(layer.bias_grad(), 1, kOut, kType, stream_);
    EXPECT_LT(relative_error(g_kept, row_matrix(ref.kept_grad())), 1e-2);
    EXPECT_LT(relative_error(g_bias, row_matrix(ref.bias_grad())), 1e-2);
    double sum = sum_squares(g_kept.data, grad_scale) + sum_squares(g_bias.data, grad_scale);
    MatrixF g_lt, g_r;
    if (layer.adapter()) {
      g_lt = gpu::download(layer.adapter()->l_t_grad(), 16, kIn, kType, stream_);
      g_r = gpu::download(layer.adapter()->r_grad(), 16, kOut, kType, stream_);
      EXPECT_LT(relative_error(g_lt, ref.adapter_lt_grad()), 2e-2);
      EXPECT_LT(relative_error(g_r, ref.adapter_r_grad()), 2e-2);
      sum += sum_squares(g_lt.data, grad_scale) + sum_squares(g_r.data, grad_scale);
    }
    const gpu::AdamWStepReport report = opt->step(stream_, grad_scale);
    ASSERT_FALSE(report.skipped);
    const float coef = grad_scale * clip_coefficient(std::sqrt(sum), config.max_grad_norm);
    EXPECT_LT(coef, grad_scale);  // clipped
    EXPECT_NEAR(report.grad_coef, coef, 1e-4 * coef);
    gpu::SlopeLinear* layers[] = {&layer};
    gpu::refresh_after_step(layers, step, mask_change_freq, stream_);

    std::vector<float> kept = ref.kept_values();
    adamw_update_reference(kept, g_kept.data, mw.m, mw.v, config, step, coef, true, kType);
    ref.set_kept_values(kept);
    adamw_update_reference(ref.bias(), g_bias.data, mb.m, mb.v, config, step, coef, false, kType);
    const MatrixF got_bias = gpu::download(layer.bias(), 1, kOut, kType, stream_);
    EXPECT_LT(relative_error(got_bias, row_matrix(ref.bias())), 1e-3);
    ref.bias() = got_bias.data;
    if (step % mask_change_freq == 0) ref.change_column_mask();
    const MatrixF got_kept = gpu::download(layer.kept_values(), 1, kept_count, kType, stream_);
    EXPECT_LT(relative_error(got_kept, row_matrix(kept)), 1e-3);
    int differing = 0;
    for (int64_t i = 0; i < kept_count; ++i) differing += got_kept.data[i] != kept[i];
    EXPECT_LT(differing, kept_count / 100) << "kept values more than one rounding apart";
    // Keep the CPU on the GPU's values (one rounding apart at most): no drift in later steps.
    ref.set_kept_values(got_kept.data);
    if (layer.adapter()) {
      adamw_update_reference(ref.adapter_lt().data, g_lt.data, ml.m, ml.v, config, step, coef, true, kType);
      adamw_update_reference(ref.adapter_r().data, g_r.data, mr.m, mr.v, config, step, coef, true, kType);
      const MatrixF lt = gpu::download(layer.adapter()->l_t(), 16, kIn, kType, stream_);
      const MatrixF r = gpu::download(layer.adapter()->r(), 16, kOut, kType, stream_);
      EXPECT_LT(relative_error(lt, ref.adapter_lt()), 1e-3);
      EXPECT_LT(relative_error(r, ref.adapter_r()), 1e-2);
      for (int64_t i = 0; i < lt.size(); ++i)  // L keeps its 2:4 mask
        if (ref.adapter_lt().data[i] == 0.0f) {
          ASSERT_EQ(lt.data[i], 0.0f);
        }
      ref.adapter_lt() = lt;
      ref.adapter_r() = r;
    }
    // W stays 2:4 on its original mask, with decay on kept elements only.
    gpu::DeviceBuffer w_now(kOut * kIn * 2);
    layer.dense_weight(w_now.get(), stream_);
    const MatrixF dense_now = gpu::download(w_now.get(), kOut, kIn, kType, stream_);
    for (int64_t i = 0; i < dense_now.size(); ++i)
      if (!ref.weights().mask_r.data[i]) {
        ASSERT_EQ(dense_now.data[i], 0.0f);
      }
  }
  EXPECT_EQ(opt->steps(), steps);
}

class ExportTest : public GpuTest, public ::testing::WithParamInterface<bool> {};

TEST_P(ExportTest, TheExportedInferenceLayerComputesTheSameY) {
  const bool relu = GetParam();
  const int64_t d_out = 96, d_in = 64, t = 32;
  const DType dtype = DType::kF16;
  gpu::SparseEngine engine(nullptr);
  gpu::DenseGemmCache dense(false);
  gpu::TrainingWorkspace ws(engine, dense);
  gpu::SlopeLinear layer(ws, {d_out, d_in, t, dtype, gpu::InputLayout::kTokenMajor, true, relu}, stream_);
  gpu::DeviceBuffer w = gpu::upload(random_matrix(d_out, d_in, 5, dtype), dtype, stream_);
  gpu::DeviceBuffer b = gpu::upload(random_matrix(1, d_out, 6, dtype), dtype, stream_);
  layer.init_weights(w.get(), b.get(), stream_);
  layer.enable_adapter(20, 9, 0.2f, stream_);  // padded to 32
  // One optimizer step so that R is no longer zero.
  gpu::AdamW opt(dtype, AdamWConfig{});
  layer.add_to(opt, "layer");
  gpu::DeviceBuffer x = gpu::upload(random_matrix(t, d_in, 7, dtype), dtype, stream_);
  gpu::DeviceBuffer dy = gpu::upload(random_matrix(d_out, t, 8, dtype), dtype, stream_);
  gpu::DeviceBuffer y(d_out * t * 2);
  layer.forward(x.get(), y.get(), stream_);
  layer.backward(x.get(), dy.get(), nullptr, false, stream_);
  ASSERT_FALSE(opt.step(stream_).skipped);
  layer.refresh(stream_);
  const MatrixF r = gpu::download(layer.adapter()->r(), 32, d_out, dtype, stream_);
  ASSERT_GT(relative_error(r, MatrixF(32, d_out)), 0.5);  // R moved

  gpu::SparseInferenceLinear inference(
      engine, dense, {d_out, d_in, layer.adapter()->rank(), t, dtype, gpu::InputLayout::kTokenMajor, true, relu,
                      gpu::AdapterForm::kMerged},
      stream_);
  layer.export_to(inference, stream_);
  gpu::DeviceBuffer y_inf(inference.output_rows() * t * 2);
  layer.forward(x.get(), y.get(), stream_);
  inference.forward(x.get(), y_inf.get(), stream_);
  const MatrixF got = gpu::download(y_inf.get(), d_out, t, dtype, stream_);
  const MatrixF want = gpu::download(y.get(), d_out, t, dtype, stream_);
  expect_close(got, want, dtype, 2.0);

  // The same export into a layer writing Y token-major: [Y | X L] in each token's row.
  gpu::InferenceLinearSpec token_major{d_out, d_in, layer.adapter()->rank(), t, dtype, gpu::InputLayout::kTokenMajor,
                                       true, relu, gpu::AdapterForm::kMerged, gpu::OutputLayout::kTokenMajor};
  gpu::SparseInferenceLinear inference_tm(engine, dense, token_major, stream_);
  layer.export_to(inference_tm, stream_);
  gpu::DeviceBuffer y_tm(t * inference_tm.output_ld() * 2);
  inference_tm.forward(x.get(), y_tm.get(), stream_);
  expect_close(first_columns(gpu::download(y_tm.get(), t, inference_tm.output_ld(), dtype, stream_), d_out),
               transpose(want), dtype, 2.0);
}

INSTANTIATE_TEST_SUITE_P(Relu, ExportTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? std::string("relu") : std::string("linear"); });

}  // namespace
}  // namespace slope::testing
