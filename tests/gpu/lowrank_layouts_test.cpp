// `slope lowrank` times (X L) R in eight storage layouts; each must compute the product it
// claims, or the experiment would time the wrong work.
#include "gpu_test.hpp"
#include "slope/core/random.hpp"
#include "slope/experiments/lowrank_layouts.hpp"

namespace slope::testing {
namespace {

class LowRankLayouts : public GpuTest {
 protected:
  // Y = (X L) R through `layout`'s two products, downloaded as Y (t x d).
  MatrixF run(const LowRankLayout& w, const MatrixF& x, const MatrixF& l, const MatrixF& r, DType dtype) {
    const int64_t t = x.rows, d = x.cols, rank = l.cols;
    gpu::DeviceBuffer dx = gpu::upload(w.feature_major ? transpose(x) : x, dtype, stream_);
    gpu::DeviceBuffer dl = gpu::upload(w.l_transposed ? transpose(l) : l, dtype, stream_);
    gpu::DeviceBuffer dr = gpu::upload(w.r_transposed ? transpose(r) : r, dtype, stream_);
    gpu::DeviceBuffer dt(t * rank * 2), dy(t * d * 2);
    gpu::poison(dt.get(), t * rank, stream_);
    gpu::poison(dy.get(), t * d, stream_);
    gpu::DenseGemmCache cache(false);
    const gpu::DenseGemm& first = cache.get(low_rank_first_shape(w, t, d, rank, dtype), stream_);
    const gpu::DenseGemm& second = cache.get(low_rank_second_shape(w, t, d, rank, dtype), stream_);
    if (w.feature_major) {
      first.run(dx.get(), dl.get(), dt.get(), stream_);
      second.run(dt.get(), dr.get(), dy.get(), stream_);
      return transpose(gpu::download(dy.get(), d, t, dtype, stream_));
    }
    first.run(dl.get(), dx.get(), dt.get(), stream_);
    second.run(dr.get(), dt.get(), dy.get(), stream_);
    return gpu::download(dy.get(), t, d, dtype, stream_);
  }
};

TEST_F(LowRankLayouts, EveryLayoutComputesXLR) {
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    const int64_t t = 48, d = 208, rank = 32;
    const MatrixF x = random_matrix(t, d, 41, dtype), l = random_matrix(d, rank, 42, dtype, 0.5f);
    const MatrixF r = random_matrix(rank, d, 43, dtype, 0.5f);
    const MatrixF want = matmul_nn(matmul_nn(x, l), r);
    for (bool feature_major : {false, true})
      for (bool l_transposed : {false, true})
        for (bool r_transposed : {false, true}) {
          const LowRankLayout w{feature_major, l_transposed, r_transposed};
          SCOPED_TRACE(to_string(w) + " " + to_string(dtype));
          expect_close(run(w, x, l, r, dtype), want, dtype, 3.0);
        }
  }
}

// The paper's way runs the exact rank, odd ones included (floor(0.02 x 1024) = 20,
// floor(0.1 x 768) = 76, floor(0.01 x 5120) = 51).
TEST_F(LowRankLayouts, ThePapersWayTakesOddRanks) {
  for (int64_t rank : {1, 7, 51}) {
    const int64_t t = 80, d = 112;
    const MatrixF x = random_matrix(t, d, 44, DType::kF16), l = random_matrix(d, rank, 45, DType::kF16, 0.5f);
    const MatrixF r = random_matrix(rank, d, 46, DType::kF16, 0.5f);
    SCOPED_TRACE("rank " + std::to_string(rank));
    expect_close(run(LowRankLayout{}, x, l, r, DType::kF16), matmul_nn(matmul_nn(x, l), r), DType::kF16, 3.0);
  }
}

}  // namespace
}  // namespace slope::testing
