#include "slope/gpu/low_rank_product.hpp"

#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"

namespace slope::gpu {

LowRankProduct::LowRankProduct(DenseGemmCache& dense, int64_t tokens, int64_t d_in, int64_t rank, int64_t d_out,
                               DType dtype, int chunks, cudaStream_t stream)
    : tokens_(tokens), d_in_(d_in), rank_(rank), d_out_(d_out), chunks_(chunks) {
  require(tokens > 0 && d_in > 0 && rank > 0 && d_out > 0, "low-rank product: dimensions must be positive");
  require(chunks >= 1 && tokens % (16 * static_cast<int64_t>(chunks)) == 0,
          "low-rank product: " + std::to_string(chunks) + " chunks do not cut " + std::to_string(tokens) +
              " tokens into multiples of 16");
  const int64_t tc = tokens / chunks;
  // Column-major views of the row-major operands: T^T (r x tc) = L^T (r x d_in) X^T (d_in x
  // tc) and Y^T (d_out x tc) = R^T (d_out x r) T^T (r x tc).
  thin_ = &dense.get({Op::kN, Op::kN, rank, tc, d_in, rank, d_in, rank, dtype, false, false}, stream);
  wide_ = &dense.get({Op::kN, Op::kN, d_out, tc, rank, d_out, rank, d_out, dtype, false, false}, stream);
  t_.reserve(tokens * rank * 2);
  if (chunks_ > 1) {
    SLOPE_CHECK(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking));
    thin_done_.resize(static_cast<size_t>(chunks_));
    for (auto& e : thin_done_) SLOPE_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    SLOPE_CHECK(cudaEventCreateWithFlags(&side_done_, cudaEventDisableTiming));
  }
}

LowRankProduct::~LowRankProduct() {
  if (side_) cudaStreamSynchronize(side_);
  for (auto e : thin_done_) cudaEventDestroy(e);
  if (side_done_) cudaEventDestroy(side_done_);
  if (side_) cudaStreamDestroy(side_);
}

void LowRankProduct::run(const void* x, const void* l, const void* r, void* y, cudaStream_t stream) const {
  const int64_t tc = tokens_ / chunks_;
  for (int i = 0; i < chunks_; ++i) {
    const auto* xi = static_cast<const uint8_t*>(x) + i * tc * d_in_ * 2;
    auto* ti = t_.as<uint8_t>() + i * tc * rank_ * 2;
    auto* yi = static_cast<uint8_t*>(y) + i * tc * d_out_ * 2;
    thin_->run(l, xi, ti, stream);
    if (chunks_ == 1) {
      wide_->run(r, ti, yi, stream);
      return;
    }
    // The wide product of chunk i waits for its T only; the next thin product goes on.
    SLOPE_CHECK(cudaEventRecord(thin_done_[static_cast<size_t>(i)], stream));
    SLOPE_CHECK(cudaStreamWaitEvent(side_, thin_done_[static_cast<size_t>(i)], 0));
    wide_->run(r, ti, yi, side_);
  }
  SLOPE_CHECK(cudaEventRecord(side_done_, side_));
  SLOPE_CHECK(cudaStreamWaitEvent(stream, side_done_, 0));
}

}  // namespace slope::gpu
