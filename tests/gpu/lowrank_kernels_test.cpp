// slope's thin-product kernels against the CPU reference: T = X L (split along d_in, partial
// sums added atomically) and Y = T R with T rounded to 16 bits, on shapes that leave partial
// token tiles, partial pipeline steps and partial column tiles, every supported rank bound.
#include "gpu_test.hpp"
#include "slope/core/random.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/lowrank_kernels.hpp"

namespace slope::testing {
namespace {

struct ThinCase {
  DType dtype;
  int64_t t, d_in, rank, d_out;
};

class LowRankKernels : public GpuTest, public ::testing::WithParamInterface<ThinCase> {};

TEST_P(LowRankKernels, MatchTheCpuReference) {
  const ThinCase c = GetParam();
  const MatrixF x = random_matrix(c.t, c.d_in, 11, c.dtype), l = random_matrix(c.d_in, c.rank, 12, c.dtype, 0.5f);
  const MatrixF r = random_matrix(c.rank, c.d_out, 13, c.dtype, 0.5f);
  const MatrixF t_want = matmul_nn(x, l);
  MatrixF t_rounded = t_want;
  for (auto& v : t_rounded.data) v = round_to(c.dtype, v);
  const MatrixF y_want = matmul_nn(t_rounded, r);

  gpu::DeviceBuffer dx = gpu::upload(x, c.dtype, stream_), dl = gpu::upload(l, c.dtype, stream_);
  gpu::DeviceBuffer dr = gpu::upload(r, c.dtype, stream_);
  gpu::DeviceBuffer t32(c.t * c.rank * sizeof(float)), y(c.t * c.d_out * 2);
  // Junk in T (the product must zero it) and in Y (every element must be written).
  gpu::fill_uniform(t32.get(), c.t * c.rank * 2, 99, 100.0f, c.dtype, stream_);
  gpu::poison(y.get(), c.t * c.d_out, stream_);
  gpu::lowrank_product(dx.get(), dl.get(), dr.get(), t32.as<float>(), y.get(), c.t, c.d_in, c.rank, c.d_out, c.dtype,
                       stream_);
  const std::vector<float> t_got = gpu::download_floats(t32.get(), static_cast<size_t>(c.t * c.rank), stream_);
  MatrixF t_got_m(c.t, c.rank);
  t_got_m.data = t_got;
  // T is fp32: only the order of the additions differs from the reference.
  const Comparison tc = compare(t_got_m, t_want, 1e-4, 1e-4);
  EXPECT_TRUE(tc.ok) << "T = X L: " << tc.worst;
  expect_close(gpu::download(y.get(), c.t, c.d_out, c.dtype, stream_), y_want, c.dtype);

  // Run again on the same scratch: a second product does not add onto the first.
  gpu::lowrank_product(dx.get(), dl.get(), dr.get(), t32.as<float>(), y.get(), c.t, c.d_in, c.rank, c.d_out, c.dtype,
                       stream_);
  expect_close(gpu::download(y.get(), c.t, c.d_out, c.dtype, stream_), y_want, c.dtype);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LowRankKernels,
    ::testing::Values(ThinCase{DType::kF16, 200, 336, 48, 272},   // partial token, step and column tiles
                      ThinCase{DType::kBF16, 130, 512, 16, 144},  // smallest rank, bf16
                      ThinCase{DType::kF16, 300, 1040, 128, 400}, // largest rank
                      ThinCase{DType::kF16, 64, 4096, 96, 128},   // one token tile: many slices of d_in
                      ThinCase{DType::kBF16, 257, 2064, 80, 1040}),
    [](const auto& info) {
      const ThinCase& c = info.param;
      return std::string(to_string(c.dtype)) + "_t" + std::to_string(c.t) + "_d" + std::to_string(c.d_in) + "_r" +
             std::to_string(c.rank) + "_n" + std::to_string(c.d_out);
    });

class LowRankKernelErrors : public GpuTest {};

TEST_F(LowRankKernelErrors, RanksAndWidthsTheKernelsCannotTakeAreErrors) {
  gpu::DeviceBuffer a(64 * 512 * 2), b(512 * 256 * 2), t32(64 * 256 * 4), y(64 * 512 * 2);
  auto product = [&](int64_t d_in, int64_t rank, int64_t d_out) {
    gpu::lowrank_product(a.get(), b.get(), b.get(), t32.as<float>(), y.get(), 64, d_in, rank, d_out, DType::kF16,
                         stream_);
  };
  EXPECT_THROW(product(512, 24, 256), Error) << "rank not a multiple of 16";
  EXPECT_THROW(product(512, 144, 256), Error) << "rank above kMaxThinRank";
  EXPECT_THROW(product(520, 32, 256), Error) << "d_in not a multiple of 16";
  EXPECT_THROW(product(512, 32, 264), Error) << "d_out not a multiple of 16";
  EXPECT_THROW(gpu::lowrank_up(t32.as<float>(), static_cast<char*>(b.get()) + 2, y.get(), 64, 32, 256, DType::kF16,
                               stream_),
               Error)
      << "misaligned operand";
  EXPECT_THROW(gpu::lowrank_down(a.get(), b.get(), t32.as<float>(), 64, 512, 32, DType::kF32, stream_), Error)
      << "fp32 operands";
}

}  // namespace
}  // namespace slope::testing
