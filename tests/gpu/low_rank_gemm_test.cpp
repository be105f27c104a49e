#include <cmath>

#include "gpu_test.hpp"
#include "slope/core/random.hpp"
#include "slope/gpu/device_info.hpp"
#include "slope/gpu/low_rank_gemm.hpp"

namespace slope::testing {
namespace {

MatrixF first_columns(const MatrixF& m, int64_t cols) {
  MatrixF out(m.rows, cols);
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out(r, c) = m(r, c);
  return out;
}

class LowRankGemmTest : public GpuTest, public ::testing::WithParamInterface<DType> {
 protected:
  // C = A B^T through strided operands (A: m x lda, B: n x ldb, C: m x ldc, all wider than
  // the product uses) against the CPU; C's columns past n must keep their poison.
  void check(const gpu::LowRankGemmShape& s, const gpu::LowRankGemmPlan& plan, uint64_t seed) {
    const DType d = s.dtype;
    const MatrixF a = random_matrix(s.m, s.lda, seed, d), b = random_matrix(s.n, s.ldb, seed + 1, d);
    gpu::DeviceBuffer da = gpu::upload(a, d, stream_), db = gpu::upload(b, d, stream_), dc(s.m * s.ldc * 2);
    gpu::poison(dc.get(), s.m * s.ldc, stream_);
    gpu::low_rank_gemm(s, plan, da.get(), db.get(), dc.get(), stream_);
    const MatrixF got = gpu::download(dc.get(), s.m, s.ldc, d, stream_);
    SCOPED_TRACE(::testing::Message() << "m " << s.m << " n " << s.n << " k " << s.k << " block_n " << plan.block_n
                                      << " splits " << plan.k_splits);
    expect_close(first_columns(got, s.n), matmul_nt(first_columns(a, s.k), first_columns(b, s.k)), d);
    int64_t untouched = 0;
    for (int64_t r = 0; r < s.m; ++r)
      for (int64_t c = s.n; c < s.ldc; ++c) untouched += std::isnan(got(r, c)) ? 1 : 0;
    EXPECT_EQ(untouched, s.m * (s.ldc - s.n)) << "low_rank_gemm wrote past n";
  }
  int sm_count() const { return gpu::query_device_info().sm_count; }
};

TEST_P(LowRankGemmTest, ThinProductSplitOverAClusterMatchesTheCpu) {
  // The adapter's X L at d = 4096, r = 48: k split 8 ways, partial sums added across blocks.
  const gpu::LowRankGemmShape s{2048, 48, 4096, 4096, 4096, 48, GetParam()};
  const gpu::LowRankGemmPlan plan = gpu::plan_low_rank_gemm(s, sm_count());
  EXPECT_EQ(plan.block_n, 48);
  EXPECT_GT(plan.k_splits, 1);
  check(s, plan, 11);
}

TEST_P(LowRankGemmTest, OddShapesAndStridesMatchTheCpu) {
  // m not a multiple of 128, k not a multiple of 64, n not a multiple of the block width.
  check({200, 40, 1000, 1008, 1000, 56, GetParam()}, gpu::plan_low_rank_gemm({200, 40, 1000, 1008, 1000, 56, GetParam()}, sm_count()), 21);
  // The wide product Y = T R: short k, many blocks along n, the last one partly outside.
  const gpu::LowRankGemmShape wide{264, 1040, 48, 48, 56, 1048, GetParam()};
  const gpu::LowRankGemmPlan plan = gpu::plan_low_rank_gemm(wide, sm_count());
  EXPECT_EQ(plan.block_n, 128);
  EXPECT_EQ(plan.k_splits, 1);
  check(wide, plan, 31);
}

TEST_P(LowRankGemmTest, EveryBlockWidthAndSplitCountMatchesTheCpu) {
  const gpu::LowRankGemmShape s{136, 112, 520, 520, 520, 120, GetParam()};
  uint64_t seed = 41;
  for (int block_n = 16; block_n <= 128; block_n += 16)
    for (int splits : {1, 2, 4, 8}) {
      check(s, {block_n, splits, false}, seed += 2);
      if (splits == 1) check(s, {block_n, splits, true}, seed += 2);  // registers straight to C
    }
}

TEST_P(LowRankGemmTest, ShapesTheKernelCannotTakeAreRejected) {
  const DType d = GetParam();
  gpu::DeviceBuffer buf(4096 * 2);
  auto run = [&](const gpu::LowRankGemmShape& s, const gpu::LowRankGemmPlan& p) {
    gpu::low_rank_gemm(s, p, buf.get(), buf.get(), buf.get(), stream_);
  };
  EXPECT_THROW(run({16, 12, 64, 64, 64, 16, d}, {16, 1}), Error);   // n not a multiple of 8
  EXPECT_THROW(run({16, 16, 64, 56, 64, 16, d}, {16, 1}), Error);   // lda below k
  EXPECT_THROW(run({16, 16, 64, 64, 64, 16, d}, {16, 3}), Error);   // a split count it lacks
  EXPECT_THROW(run({16, 16, 64, 64, 64, 16, d}, {24, 1}), Error);   // a block width it lacks
  EXPECT_THROW(run({16, 16, 64, 64, 64, 16, d}, {16, 2, true}), Error);  // split, stored from registers
  EXPECT_THROW(run({16, 16, 64, 64, 64, 16, DType::kF32}, {16, 1}), Error);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, LowRankGemmTest, ::testing::Values(DType::kF16, DType::kBF16),
                         [](const auto& info) { return info.param == DType::kF16 ? "fp16" : "bf16"; });

}  // namespace
}  // namespace slope::testing
