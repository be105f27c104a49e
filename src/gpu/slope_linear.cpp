#include "slope/gpu/slope_linear.hpp"

#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/kernels.hpp"

namespace slope::gpu {
namespace {

// dW (d_out x d_in, row-major) = dY^T X: column-major dW^T (d_in x d_out) = X^T dY.
GemmShape weight_grad_shape(const TrainingLinearSpec& s) {
  GemmShape g;
  const bool token_major = s.input == InputLayout::kTokenMajor;
  g.op_a = token_major ? Op::kN : Op::kT;  // X row-major is column-major d_in x t; X^T is t x d_in
  g.op_b = Op::kN;                         // dY^T row-major is column-major t x d_out
  g.m = s.d_in;
  g.n = s.d_out;
  g.k = s.tokens;
  g.lda = token_major ? s.d_in : s.tokens;
  g.ldb = s.tokens;
  g.ldd = s.d_in;
  g.dtype = s.dtype;
  return g;
}

}  // namespace

void* TrainingWorkspace::grad_scratch(int64_t elements) {
  scratch_.reserve(static_cast<size_t>(elements) * 2);
  return scratch_.get();
}

SlopeLinear::SlopeLinear(TrainingWorkspace& workspace, const TrainingLinearSpec& spec, cudaStream_t stream)
    : ws_(workspace), spec_(spec) {
  require(spec.d_out % 16 == 0 && spec.d_in % 16 == 0 && spec.tokens % 16 == 0,
          "SLoPe layer dimensions must be multiples of 16");
  if (spec.bias) {
    bias_.reserve(spec.d_out * 2);
    bias_grad_.reserve(spec.d_out * 2);
  }
  indices_.reserve(spec.d_out * spec.d_in / 8);
  grad_.reserve(spec.d_out * spec.d_in / 2 * 2);
  w_ = std::make_unique<SparseLinear>(workspace.engine(), spec.d_out, spec.d_in, spec.tokens, spec.dtype, Tiling::kNone,
                                      stream, spec.bias ? bias_.get() : nullptr, spec.input, spec.relu);
  // dY^T is feature-major; tiles (square, along T's rows) where the transpose is tall.
  t_ = std::make_unique<SparseLinear>(workspace.engine(), spec.d_in, spec.d_out, spec.tokens, spec.dtype,
                                      can_tile(spec.d_in, spec.d_out) ? Tiling::kAuto : Tiling::kNone, stream, nullptr,
                                      InputLayout::kFeatureMajor);
  dw_ = &workspace.dense().get(weight_grad_shape(spec), stream);
  workspace.grad_scratch(spec.d_out * spec.d_in);
}

void SlopeLinear::init_weights(const void* w, const void* bias, cudaStream_t stream) {
  const int64_t n = spec_.d_out * spec_.d_in;
  DeviceBuffer w_r(n * 2), t(n * 2);
  prune_rows_2to4(w, w_r.get(), indices_.as<uint8_t>(), spec_.d_out, spec_.d_in, spec_.dtype, stream);
  double_prune_transpose(w_r.get(), t.get(), spec_.d_out, spec_.d_in, spec_.dtype, stream);
  w_->set_weight(w_r.get(), stream);
  t_->set_weight(t.get(), stream);
  if (spec_.bias) {
    require(bias != nullptr, "this layer needs a bias");
    SLOPE_CHECK(cudaMemcpyAsync(bias_.get(), bias, spec_.d_out * 2, cudaMemcpyDeviceToDevice, stream));
  }
  SLOPE_CHECK(cudaStreamSynchronize(stream));  // w_r and t die here
}

void SlopeLinear::forward(const void* x, void* y, cudaStream_t stream) const { w_->forward(x, y, stream); }

void SlopeLinear::grad_input(const void* dy, void* dx, cudaStream_t stream) const { t_->forward(dy, dx, stream); }

void SlopeLinear::grad_weight(const void* x, const void* dy, bool accumulate, cudaStream_t stream) {
  void* scratch = ws_.grad_scratch(spec_.d_out * spec_.d_in);
  dw_->run(x, dy, scratch, stream);
  gather_kept_2to4(scratch, indices_.as<uint8_t>(), grad_.get(), spec_.d_out, spec_.d_in, accumulate, spec_.dtype,
                   stream);
  if (spec_.bias) row_sums(dy, bias_grad_.get(), spec_.d_out, spec_.tokens, accumulate, spec_.dtype, stream);
}

void SlopeLinear::backward(const void* x, const void* dy, void* dx, bool accumulate, cudaStream_t stream) {
  if (dx) grad_input(dy, dx, stream);
  grad_weight(x, dy, accumulate, stream);
}

size_t SlopeLinear::state_bytes() const {
  return w_->compressed_bytes() + t_->compressed_bytes() + indices_.bytes() + grad_.bytes() + bias_.bytes() +
         bias_grad_.bytes();
}

}  // namespace slope::gpu
