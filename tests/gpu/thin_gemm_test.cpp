#include <cmath>

#include "gpu_test.hpp"
#include "slope/core/random.hpp"
#include "slope/gpu/device_info.hpp"
#include "slope/gpu/thin_gemm.hpp"

namespace slope::testing {
namespace {

MatrixF first_columns(const MatrixF& m, int64_t cols) {
  MatrixF out(m.rows, cols);
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out(r, c) = m(r, c);
  return out;
}

class ThinGemmTest : public GpuTest, public ::testing::WithParamInterface<DType> {
 protected:
  // C = A B^T through strided operands (A: m x lda, B: n x ldb, C: m x ldc, each wider than
  // the product uses) against the CPU, `calls` times on fresh inputs through the same plan
  // (the arrival counters must be back at zero after each call); C's columns past n must
  // keep their poison.
  void check(const gpu::ThinGemmShape& s, int k_splits, uint64_t seed, int calls = 1) {
    const DType d = s.dtype;
    const gpu::ThinGemm gemm(s, gpu::query_device_info().sm_count, k_splits);
    SCOPED_TRACE(::testing::Message() << "m " << s.m << " n " << s.n << " k " << s.k << " splits "
                                      << gemm.k_splits());
    for (int call = 0; call < calls; ++call) {
      const MatrixF a = random_matrix(s.m, s.lda, seed + 2 * call, d), b = random_matrix(s.n, s.ldb, seed + 2 * call + 1, d);
      gpu::DeviceBuffer da = gpu::upload(a, d, stream_), db = gpu::upload(b, d, stream_), dc(s.m * s.ldc * 2);
      gpu::poison(dc.get(), s.m * s.ldc, stream_);
      gemm.run(da.get(), db.get(), dc.get(), stream_);
      const MatrixF got = gpu::download(dc.get(), s.m, s.ldc, d, stream_);
      expect_close(first_columns(got, s.n), matmul_nt(first_columns(a, s.k), first_columns(b, s.k)), d);
      int64_t untouched = 0;
      for (int64_t r = 0; r < s.m; ++r)
        for (int64_t c = s.n; c < s.ldc; ++c) untouched += std::isnan(got(r, c)) ? 1 : 0;
      EXPECT_EQ(untouched, s.m * (s.ldc - s.n)) << "thin_gemm wrote past n";
    }
  }
};

TEST_P(ThinGemmTest, AdapterShapeSplitOverTheGridMatchesTheCpuCallAfterCall) {
  // The adapter's X L at d = 4096, r = 48, k split so that about two blocks share an SM;
  // three calls through one plan.
  const gpu::ThinGemmShape s{2048, 48, 4096, 4096, 4096, 48, GetParam()};
  EXPECT_GT(gpu::ThinGemm(s, gpu::query_device_info().sm_count).k_splits(), 1);
  check(s, 0, 11, 3);
}

TEST_P(ThinGemmTest, OddShapesAndStridesMatchTheCpu) {
  // m not a multiple of 64, k not a multiple of 64, n not a multiple of 16.
  check({200, 40, 1000, 1008, 1000, 56, GetParam()}, 0, 21, 2);
  check({72, 8, 64, 64, 72, 8, GetParam()}, 0, 25);
}

TEST_P(ThinGemmTest, EveryBlockWidthAndSplitCountMatchesTheCpu) {
  // 17 k slices: at 16 splits some blocks have none and still count their (zero) tiles.
  uint64_t seed = 41;
  for (int64_t n : {8, 16, 40, 48, 64, 96, 120, 128})
    for (int splits : {1, 2, 4, 8, 16}) check({136, n, 1088, 1096, 1088, 136, GetParam()}, splits, seed += 2);
}

TEST_P(ThinGemmTest, ShapesTheKernelCannotTakeAreRejected) {
  const DType d = GetParam();
  const int sms = gpu::query_device_info().sm_count;
  EXPECT_THROW(gpu::ThinGemm({16, 136, 64, 64, 64, 136, d}, sms), Error);     // n above 128
  EXPECT_THROW(gpu::ThinGemm({16, 12, 64, 64, 64, 16, d}, sms), Error);       // n not a multiple of 8
  EXPECT_THROW(gpu::ThinGemm({16, 16, 64, 56, 64, 16, d}, sms), Error);       // lda below k
  EXPECT_THROW(gpu::ThinGemm({16, 16, 64, 64, 64, 16, d}, sms, 3), Error);    // a split count it lacks
  EXPECT_THROW(gpu::ThinGemm({16, 16, 64, 64, 64, 16, DType::kF32}, sms), Error);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, ThinGemmTest, ::testing::Values(DType::kF16, DType::kBF16),
                         [](const auto& info) { return info.param == DType::kF16 ? "fp16" : "bf16"; });

}  // namespace
}  // namespace slope::testing
