#include "slope/gpu/training_adapter.hpp"

#include "slope/core/error.hpp"
#include "slope/gpu/adamw.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/inference_linear.hpp"
#include "slope/gpu/kernels.hpp"

namespace slope::gpu {
namespace {

// Column-major cuBLASLt views of the row-major buffers (a row-major p x q matrix is a
// column-major q x p one): X token-major is X^T (d_in x t), feature-major is X (t x d_in);
// H, dH (t x r) and Y, dY (t x d_out) are stored as H^T, dY^T row-major, i.e. column-major
// t x r, t x d_out; L^T row-major is column-major L (d_in x r); R row-major is R^T (d_out x r).
GemmShape shape(Op a, Op b, int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldd, DType dtype) {
  return {a, b, m, n, k, lda, ldb, ldd, dtype, false, false};
}

}  // namespace

TrainingAdapter::TrainingAdapter(DenseGemmCache& dense, DenseGemmCache& side, const TrainingAdapterSpec& spec,
                                 cudaStream_t stream)
    : spec_(spec), rank_(padded_rank(spec.rank)) {
  require(spec.rank > 0, "adapter rank must be positive");
  require(spec.d_in % 16 == 0 && spec.d_out % 16 == 0 && spec.tokens % 16 == 0,
          "adapter dimensions must be multiples of 16");
  const int64_t t = spec.tokens, r = rank_, din = spec.d_in, dout = spec.d_out;
  const bool tok = spec.input == InputLayout::kTokenMajor;
  const DType dt = spec.dtype;
  l_t_ = DeviceBuffer(r * din * 2);
  r_ = DeviceBuffer(r * dout * 2);
  l_t_grad_ = DeviceBuffer(r * din * 2);
  r_grad_ = DeviceBuffer(r * dout * 2);
  h_ = DeviceBuffer(t * r * 2);
  dh_ = DeviceBuffer(t * r * 2);
  SLOPE_CHECK(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking));
  SLOPE_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming));
  SLOPE_CHECK(cudaEventCreateWithFlags(&join_, cudaEventDisableTiming));
  GemmShape hr = shape(Op::kN, Op::kT, t, dout, r, t, dout, t, dt);
  hr.relu = spec.relu;  // cuBLASLt applies it after the beta term: act(Y + H R)
  hr_ = &dense.get(hr, stream);
  xl_ = &side.get(shape(tok ? Op::kT : Op::kN, Op::kN, t, r, din, tok ? din : t, din, t, dt), stream);
  dx_ = &dense.get(shape(Op::kN, Op::kT, t, din, r, t, din, t, dt), stream);
  dh_gemm_ = &side.get(shape(Op::kN, Op::kN, t, r, dout, t, dout, t, dt), stream);
  dr_ = &side.get(shape(Op::kT, Op::kN, dout, r, t, t, t, dout, dt), stream);
  dl_ = &side.get(shape(tok ? Op::kN : Op::kT, Op::kN, din, r, t, tok ? din : t, t, din, dt), stream);
  SLOPE_CHECK(cudaMemsetAsync(l_t_.get(), 0, l_t_.bytes(), stream));
  SLOPE_CHECK(cudaMemsetAsync(r_.get(), 0, r_.bytes(), stream));
  SLOPE_CHECK(cudaMemsetAsync(l_t_grad_.get(), 0, l_t_grad_.bytes(), stream));
  SLOPE_CHECK(cudaMemsetAsync(r_grad_.get(), 0, r_grad_.bytes(), stream));
}

TrainingAdapter::~TrainingAdapter() {
  // Destructors must not throw: statuses are ignored here, as everywhere in slope's cleanup.
  if (side_) cudaStreamSynchronize(side_);
  if (fork_) cudaEventDestroy(fork_);
  if (join_) cudaEventDestroy(join_);
  if (side_) cudaStreamDestroy(side_);
}

void TrainingAdapter::init_random(uint64_t seed, float scale, cudaStream_t stream) {
  // Only the first spec.rank rows are random; the padding rows stay zero.
  fill_uniform(l_t_.get(), spec_.rank * spec_.d_in, seed, scale, spec_.dtype, stream);
  prune_rows_2to4(l_t_.get(), l_t_.get(), nullptr, spec_.rank, spec_.d_in, spec_.dtype, stream);
  SLOPE_CHECK(cudaMemsetAsync(r_.get(), 0, r_.bytes(), stream));
}

void TrainingAdapter::set(const void* l_t, const void* r, cudaStream_t stream) {
  SLOPE_CHECK(cudaMemsetAsync(l_t_.get(), 0, l_t_.bytes(), stream));
  SLOPE_CHECK(cudaMemsetAsync(r_.get(), 0, r_.bytes(), stream));
  SLOPE_CHECK(cudaMemcpyAsync(l_t_.get(), l_t, spec_.rank * spec_.d_in * 2, cudaMemcpyDeviceToDevice, stream));
  SLOPE_CHECK(cudaMemcpyAsync(r_.get(), r, spec_.rank * spec_.d_out * 2, cudaMemcpyDeviceToDevice, stream));
  prune_rows_2to4(l_t_.get(), l_t_.get(), nullptr, spec_.rank, spec_.d_in, spec_.dtype, stream);
}

void TrainingAdapter::forward_begin(const void* x, cudaStream_t stream) {
  SLOPE_CHECK(cudaEventRecord(fork_, stream));
  SLOPE_CHECK(cudaStreamWaitEvent(side_, fork_, 0));
  xl_->run(x, l_t_.get(), h_.get(), side_);
  SLOPE_CHECK(cudaEventRecord(join_, side_));
}

void TrainingAdapter::forward_end(void* y, cudaStream_t stream) {
  SLOPE_CHECK(cudaStreamWaitEvent(stream, join_, 0));
  hr_->run(h_.get(), r_.get(), y, stream, 1.0f, 1.0f);
}

void TrainingAdapter::backward(const void* x, const void* dy, void* dx, bool accumulate, cudaStream_t stream) {
  backward_begin(x, dy, accumulate, stream);
  backward_end(dx, stream);
}

void TrainingAdapter::backward_begin(const void* x, const void* dy, bool accumulate, cudaStream_t stream) {
  SLOPE_CHECK(cudaEventRecord(fork_, stream));
  SLOPE_CHECK(cudaStreamWaitEvent(side_, fork_, 0));
  const float beta = accumulate ? 1.0f : 0.0f;
  dh_gemm_->run(dy, r_.get(), dh_.get(), side_);
  dr_->run(dy, h_.get(), r_grad_.get(), side_, 1.0f, beta);
  dl_->run(x, dh_.get(), l_t_grad_.get(), side_, 1.0f, beta);
  // L's pruned entries (zeros of L^T) get no gradient, so they stay zero under AdamW.
  zero_where_zero(l_t_grad_.get(), l_t_.get(), rank_ * spec_.d_in, spec_.dtype, side_);
  SLOPE_CHECK(cudaEventRecord(join_, side_));
}

void TrainingAdapter::backward_end(void* dx, cudaStream_t stream) {
  SLOPE_CHECK(cudaStreamWaitEvent(stream, join_, 0));
  if (dx) dx_->run(dh_.get(), l_t_.get(), dx, stream, 1.0f, 1.0f);
}

void TrainingAdapter::add_to(AdamW& optimizer, const std::string& name) {
  optimizer.add(l_t_.get(), l_t_grad_.get(), rank_ * spec_.d_in, true, name + ".adapter.l_t");
  optimizer.add(r_.get(), r_grad_.get(), rank_ * spec_.d_out, true, name + ".adapter.r");
}

size_t TrainingAdapter::state_bytes() const {
  return l_t_.bytes() + r_.bytes() + l_t_grad_.bytes() + r_grad_.bytes() + h_.bytes() + dh_.bytes();
}

}  // namespace slope::gpu
