// The experiments' own device helpers: the random fills every benchmark operand comes from,
// and the relative error `slope spmm` reports (the issue's <= 1e-3 criterion), checked
// against the CPU.
#include <cmath>
#include <set>
#include <vector>

#include "gpu_test.hpp"
#include "slope/core/random.hpp"
#include "slope/gpu/kernels.hpp"

namespace slope::testing {
namespace {

class FillKernels : public GpuTest, public ::testing::WithParamInterface<DType> {};

// Counts that are not multiples of a block, and one past the kernels' 4096-block grid
// (4096 x 256 elements), so that the grid-stride loops take a second lap.
const int64_t kCounts[] = {1, 4099, 3 * 4096 * 256 + 17};

// `count` elements filled by `fill`, with a poisoned guard of 64 elements after them that the
// fill must leave alone.
std::vector<float> filled(int64_t count, DType d, cudaStream_t stream, const auto& fill) {
  const int64_t guard = 64;
  gpu::DeviceBuffer buf((count + guard) * 2);
  gpu::poison(buf.get(), static_cast<size_t>(count + guard), stream);
  fill(buf.get());
  const MatrixF all = gpu::download(buf.get(), 1, count + guard, d, stream);
  for (int64_t i = count; i < count + guard; ++i)
    EXPECT_TRUE(std::isnan(all.data[static_cast<size_t>(i)])) << "element " << i << " past the count was written";
  return {all.data.begin(), all.data.begin() + count};
}

TEST_P(FillKernels, UniformFillsTheRangeEvenlyAndOnlyTheCount) {
  const DType d = GetParam();
  const float scale = 0.5f;
  for (int64_t count : kCounts) {
    const auto v = filled(count, d, stream_, [&](void* p) { gpu::fill_uniform(p, count, 11, scale, d, stream_); });
    double sum = 0.0, sum_sq = 0.0;
    std::set<float> distinct;
    for (float x : v) {
      ASSERT_TRUE(std::isfinite(x));
      ASSERT_LE(std::fabs(x), scale);  // [-scale, scale) in fp32, rounding may reach scale
      sum += x;
      sum_sq += static_cast<double>(x) * x;
      distinct.insert(x);
    }
    if (count < 1000) continue;
    // Uniform on [-s, s): mean 0, mean square s^2 / 3 (standard errors ~0.3 / sqrt(count)).
    const double n = static_cast<double>(count);
    EXPECT_NEAR(sum / n, 0.0, 0.02) << count;
    EXPECT_NEAR(sum_sq / n, scale * scale / 3.0, 0.01) << count;
    EXPECT_GT(distinct.size(), 500u) << count;  // fp16 and bf16 hold many values in [-0.5, 0.5]
  }
}

TEST_P(FillKernels, UniformIsReproducibleAndSeeded) {
  const DType d = GetParam();
  const int64_t count = 4099;
  auto fill = [&](uint64_t seed) {
    return filled(count, d, stream_, [&](void* p) { gpu::fill_uniform(p, count, seed, 1.0f, d, stream_); });
  };
  const auto a = fill(3), b = fill(3), c = fill(4);
  EXPECT_EQ(a, b);
  int64_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == c[i];
  EXPECT_LT(same, count / 20) << "seeds 3 and 4 gave nearly the same values";
}

TEST_P(FillKernels, NonzeroHasNoZeroAndBothSigns) {
  const DType d = GetParam();
  for (int64_t count : kCounts) {
    const auto v = filled(count, d, stream_, [&](void* p) { gpu::fill_nonzero(p, count, 5, d, stream_); });
    int64_t negative = 0;
    for (float x : v) {
      ASSERT_GE(std::fabs(x), 1.0f);  // magnitudes in [1, 2]: never zero, never tiny
      ASSERT_LE(std::fabs(x), 2.0f);
      negative += x < 0;
    }
    if (count >= 1000) {
      EXPECT_NEAR(static_cast<double>(negative) / count, 0.5, 0.05) << count;
    }
  }
}

TEST_P(FillKernels, RelativeErrorMatchesTheCpu) {
  const DType d = GetParam();
  for (int64_t count : kCounts) {
    // b a random "reference", a = b plus a small random error: a typical comparison.
    const MatrixF b = random_matrix(1, count, 21 + count, d);
    const MatrixF noise = random_matrix(1, count, 22 + count, d, 0.01f);
    MatrixF a = b;
    for (int64_t i = 0; i < count; ++i) a.data[static_cast<size_t>(i)] = round_to(d, b.data[i] + noise.data[i]);
    gpu::DeviceBuffer da = gpu::upload(a, d, stream_), db = gpu::upload(b, d, stream_);
    const double want = relative_error(a, b);
    ASSERT_GT(want, 0.0);
    EXPECT_NEAR(gpu::relative_error_device(da.get(), db.get(), count, d, stream_), want, 1e-9 * want) << count;
    EXPECT_EQ(gpu::relative_error_device(db.get(), db.get(), count, d, stream_), 0.0);
  }
}

TEST_P(FillKernels, RelativeErrorAgainstZeros) {
  const DType d = GetParam();
  const int64_t count = 4099;
  const MatrixF a = random_matrix(1, count, 9, d);
  gpu::DeviceBuffer da = gpu::upload(a, d, stream_), zeros = gpu::upload(MatrixF(1, count), d, stream_);
  // As the CPU's: 0 when both are zero, infinite when only the reference is.
  EXPECT_EQ(gpu::relative_error_device(zeros.get(), zeros.get(), count, d, stream_), 0.0);
  EXPECT_TRUE(std::isinf(gpu::relative_error_device(da.get(), zeros.get(), count, d, stream_)));
  EXPECT_DOUBLE_EQ(gpu::relative_error_device(zeros.get(), da.get(), count, d, stream_), 1.0);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, FillKernels, ::testing::Values(DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace slope::testing
