#include <cmath>

#include "gpu_test.hpp"
#include "slope/core/adamw.hpp"
#include "slope/core/random.hpp"
#include "slope/gpu/adamw.hpp"

namespace slope::testing {
namespace {

class AdamWGpu : public GpuTest, public ::testing::WithParamInterface<DType> {};

// Tensors of ragged lengths, one longer than a chunk, one without weight decay.
struct HostTensor {
  int64_t count;
  bool decay;
  std::vector<float> p, m, v;
};

std::vector<float> random_values(int64_t n, uint64_t seed, DType dtype, float scale) {
  return random_matrix(1, n, seed, dtype, scale).data;
}

double ulp_error(const std::vector<float>& got, const std::vector<float>& want, DType dtype) {
  // Worst difference in units of the 16-bit spacing at the wanted value.
  const double bits = dtype == DType::kF16 ? 10 : 7;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double spacing = std::ldexp(1.0, static_cast<int>(std::floor(std::log2(std::fabs(want[i]) + 1e-30))) -
                                               static_cast<int>(bits));
    worst = std::max(worst, std::fabs(got[i] - want[i]) / std::max(spacing, 1e-7));
  }
  return worst;
}

TEST_P(AdamWGpu, MatchesTheCpuReferenceOverStepsWithClipping) {
  const DType dtype = GetParam();
  AdamWConfig config;
  config.lr = 3e-3f;
  config.weight_decay = 0.1f;
  config.max_grad_norm = 20.0f;  // the gradients' norm is ~150: every step clips
  gpu::AdamW opt(dtype, config);
  std::vector<HostTensor> host = {{70001, true, {}, {}, {}}, {37, false, {}, {}, {}}, {1000, true, {}, {}, {}}};
  std::vector<gpu::DeviceBuffer> params, grads;
  for (size_t i = 0; i < host.size(); ++i) {
    HostTensor& h = host[i];
    h.p = random_values(h.count, 10 + i, dtype, 1.0f);
    h.m.assign(h.count, 0.0f);
    h.v.assign(h.count, 0.0f);
    params.push_back(gpu::upload(row_matrix(h.p), dtype, stream_));
    grads.emplace_back(h.count * 2);
    opt.add(params.back().get(), grads.back().get(), h.count, h.decay, "t" + std::to_string(i));
  }
  for (int step = 1; step <= 3; ++step) {
    std::vector<std::vector<float>> g(host.size());
    double sum = 0;
    for (size_t i = 0; i < host.size(); ++i) {
      g[i] = random_values(host[i].count, 100 * step + i, dtype, 1.0f);
      gpu::upload_into(row_matrix(g[i]), dtype, grads[i].get(), stream_);
      for (float x : g[i]) sum += 0.5 * x * 0.5 * x;
    }
    const gpu::AdamWStepReport report = opt.step(stream_, 0.5f);
    ASSERT_FALSE(report.skipped);
    EXPECT_EQ(report.step, step);
    EXPECT_NEAR(report.grad_norm, std::sqrt(sum), 1e-4 * std::sqrt(sum));
    const float coef = 0.5f * clip_coefficient(std::sqrt(sum), config.max_grad_norm);
    EXPECT_NEAR(report.grad_coef, coef, 1e-5 * coef);
    EXPECT_LT(coef, 0.5f);
    for (size_t i = 0; i < host.size(); ++i) {
      HostTensor& h = host[i];
      adamw_update_reference(h.p, g[i], h.m, h.v, config, step, coef, h.decay, dtype);
      const MatrixF got = gpu::download(params[i].get(), 1, h.count, dtype, stream_);
      SCOPED_TRACE("step " + std::to_string(step) + " tensor " + std::to_string(i));
      // One rounding apart at most (fp32 contraction and the norm's summation order).
      EXPECT_LE(ulp_error(got.data, h.p, dtype), 1.01);
      const std::vector<float> m = gpu::download_floats(opt.first_moment(static_cast<int>(i)), h.count, stream_);
      const std::vector<float> v = gpu::download_floats(opt.second_moment(static_cast<int>(i)), h.count, stream_);
      for (int64_t j = 0; j < h.count; j += 97) {
        EXPECT_NEAR(m[j], h.m[j], 1e-5 * (std::fabs(h.m[j]) + 1e-3));
        EXPECT_NEAR(v[j], h.v[j], 1e-5 * (std::fabs(h.v[j]) + 1e-6));
      }
    }
  }
}

TEST_P(AdamWGpu, NonFiniteGradientSkipsTheStepAndChangesNothing) {
  const DType dtype = GetParam();
  gpu::AdamW opt(dtype, AdamWConfig{});
  gpu::DeviceBuffer p = gpu::upload(random_matrix(1, 4099, 1, dtype), dtype, stream_);
  gpu::DeviceBuffer g = gpu::upload(random_matrix(1, 4099, 2, dtype), dtype, stream_);
  opt.add(p.get(), g.get(), 4099, true, "p");
  ASSERT_FALSE(opt.step(stream_).skipped);
  const size_t p_bytes = 4099 * 2;  // the parameter's own bytes: the buffer's rounded tail holds nothing
  for (float bad : {NAN, INFINITY}) {
    MatrixF grad = random_matrix(1, 4099, 3, dtype);
    grad.data[4000] = bad;
    gpu::upload_into(grad, dtype, g.get(), stream_);
    const auto before_p = gpu::download_bytes(p.get(), p_bytes, stream_);
    const auto before_m = gpu::download_bytes(opt.first_moment(0), 4099 * 4, stream_);
    const auto before_v = gpu::download_bytes(opt.second_moment(0), 4099 * 4, stream_);
    const gpu::AdamWStepReport report = opt.step(stream_);
    EXPECT_TRUE(report.skipped);
    EXPECT_FALSE(std::isfinite(report.grad_norm));
    EXPECT_EQ(report.step, 1);
    EXPECT_EQ(opt.steps(), 1);
    EXPECT_EQ(gpu::download_bytes(p.get(), p_bytes, stream_), before_p);
    EXPECT_EQ(gpu::download_bytes(opt.first_moment(0), 4099 * 4, stream_), before_m);
    EXPECT_EQ(gpu::download_bytes(opt.second_moment(0), 4099 * 4, stream_), before_v);
  }
}

INSTANTIATE_TEST_SUITE_P(Types, AdamWGpu, ::testing::Values(DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(AdamWGpuErrors, BadArgumentsAreRejected) {
  EXPECT_THROW(gpu::AdamW(DType::kF32, AdamWConfig{}), Error);
  AdamWConfig bad;
  bad.beta2 = 1.5f;
  EXPECT_THROW(gpu::AdamW(DType::kF16, bad), Error);
}

}  // namespace
}  // namespace slope::testing
