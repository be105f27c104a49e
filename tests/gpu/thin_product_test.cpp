#include <cmath>

#include "gpu_test.hpp"
#include "slope/core/random.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/thin_product.hpp"

namespace slope::testing {
namespace {

struct Case {
  DType dtype;
  int64_t r, d, t, ldt;
};

class ThinProduct : public GpuTest, public ::testing::WithParamInterface<Case> {};

// T^T = L^T X^T against the CPU on fresh random operands; the columns between t and ldt
// (another matrix's rows, in the folded adapter) must keep what they held.
TEST_P(ThinProduct, MatchesTheCpuAndWritesOnlyItsColumns) {
  const Case c = GetParam();
  ASSERT_TRUE(gpu::thin_product_supports(c.r, c.d, c.t, c.ldt));
  const MatrixF lt = random_matrix(c.r, c.d, 21, c.dtype, 0.25f), xt = random_matrix(c.d, c.t, 22, c.dtype);
  gpu::DeviceBuffer dl = gpu::upload(lt, c.dtype, stream_), dx = gpu::upload(xt, c.dtype, stream_);
  gpu::DeviceBuffer out(c.r * c.ldt * 2);
  gpu::poison(out.get(), c.r * c.ldt, stream_);
  gpu::thin_product(dl.get(), dx.get(), out.get(), c.r, c.d, c.t, c.ldt, c.dtype, stream_);
  const MatrixF got = gpu::download(out.get(), c.r, c.ldt, c.dtype, stream_);
  const MatrixF want = matmul_nn(lt, xt);
  MatrixF product(c.r, c.t);
  int64_t untouched = 0;
  for (int64_t i = 0; i < c.r; ++i) {
    for (int64_t j = 0; j < c.t; ++j) product(i, j) = got(i, j);
    for (int64_t j = c.t; j < c.ldt; ++j) untouched += std::isnan(got(i, j)) ? 1 : 0;
  }
  expect_close(product, want, c.dtype);
  EXPECT_EQ(untouched, c.r * (c.ldt - c.t));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ThinProduct,
    ::testing::Values(Case{DType::kF16, 16, 80, 8, 8},          // less than one stage of K per block
                      Case{DType::kF16, 48, 1040, 200, 208},    // odd rank tiles, a partial token tile
                      Case{DType::kBF16, 64, 2064, 264, 264},   // two warps along r
                      Case{DType::kF16, 112, 4112, 136, 152},
                      Case{DType::kBF16, 128, 1552, 128, 256}),  // the largest rank
    [](const auto& info) {
      const Case& c = info.param;
      return std::string(to_string(c.dtype)) + "_r" + std::to_string(c.r) + "_d" + std::to_string(c.d) + "_t" +
             std::to_string(c.t) + "_ld" + std::to_string(c.ldt);
    });

TEST_F(GpuTest, ThinProductRefusesDimensionsItCannotTake) {
  gpu::DeviceBuffer b(4096);
  for (auto [r, d, t, ldt] : {std::array<int64_t, 4>{20, 64, 8, 8}, {144, 64, 8, 8}, {16, 72, 8, 8},
                              {16, 64, 12, 12}, {16, 64, 16, 8}}) {
    EXPECT_FALSE(gpu::thin_product_supports(r, d, t, ldt));
    EXPECT_THROW(gpu::thin_product(b.get(), b.get(), b.get(), r, d, t, ldt, DType::kF16, stream_), Error);
  }
}

}  // namespace
}  // namespace slope::testing
