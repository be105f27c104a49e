#include "slope/gpu/inference_linear.hpp"

#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/kernels.hpp"

namespace slope::gpu {
namespace {

// Column-major GEMM shapes of the adapter. `x_ld` is a token-major X's row stride, `y_ld` a
// token-major Y's.
GemmShape xl_shape(const InferenceLinearSpec& s, int64_t r, int64_t x_ld) {
  GemmShape g;  // T (t x r, column-major: T^T r x t row-major) = X (t x d_in) L (d_in x r)
  const bool token_major = s.input == InputLayout::kTokenMajor;
  g.op_a = token_major ? Op::kT : Op::kN;  // X row-major is column-major d_in x t; X^T is t x d_in
  g.op_b = Op::kT;                         // L row-major d_in x r is column-major r x d_in
  g.m = s.tokens;
  g.n = r;
  g.k = s.d_in;
  g.lda = token_major ? x_ld : s.tokens;
  g.ldb = r;
  g.ldd = s.tokens;
  g.dtype = s.dtype;
  return g;
}

// The folded form's thin product: T~ (t x 2r, T = X L at the even columns, zero at the odd
// ones) written into the input buffer past X's d_in features.
GemmShape folded_xl_shape(const InferenceLinearSpec& s, int64_t r, int64_t x_ld) {
  GemmShape g;
  if (s.input == InputLayout::kTokenMajor) {
    // Column-major T~^T (2r x t, ld x_ld) = L~^T (stored 2r x d_in row-major, odd rows zero:
    // op T) X^T (X row-major t x x_ld is column-major x_ld x t: its first d_in rows, op N).
    // T's columns sit two elements apart in a token's row, which no leading dimension can
    // express: the product computes the zero columns too.
    g = {Op::kT, Op::kN, 2 * r, s.tokens, s.d_in, s.d_in, x_ld, x_ld, s.dtype, false, false};
  } else {
    // Column-major T (t x r) = X (X^T row-major is column-major t x d_in, op N) L (L^T
    // row-major r x d_in is column-major d_in x r, op N), with leading dimension 2t: column j
    // lands on row d_in + 2j of X^T, and the odd rows are zeroed separately. Half the work of
    // computing the zero columns, which makes the product memory-bound up to r = 128.
    g = {Op::kN, Op::kN, s.tokens, r, s.d_in, s.tokens, s.d_in, 2 * s.tokens, s.dtype, false, false};
  }
  return g;
}

// Y (+)= T R, with T column-major t x r (ld t), or, merged, read in place from the layer's
// output: the (X L) rows of Y^T past d_out, or the (X L) columns of Y past d_out.
GemmShape tr_shape(const InferenceLinearSpec& s, int64_t r, bool relu, bool t_in_output, int64_t y_ld) {
  GemmShape g;
  if (s.output == OutputLayout::kFeatureMajor) {
    // Y^T row-major is column-major t x d_out: Y = T (op N) R (R row-major r x d_out is
    // column-major d_out x r: op T).
    g = {Op::kN, Op::kT, s.tokens, s.d_out, r, s.tokens, s.d_out, s.tokens, s.dtype, false, relu};
  } else {
    // Y row-major (rows y_ld apart) is column-major d_out x t: Y^T = R^T (R row-major is
    // column-major d_out x r, op N) T^T (T column-major t x r: op T; merged, T's columns of Y
    // are column-major r x t with ld y_ld: op N).
    g = {Op::kN, t_in_output ? Op::kN : Op::kT, s.d_out, s.tokens, r, s.d_out, t_in_output ? y_ld : s.tokens,
         y_ld, s.dtype, false, relu};
  }
  return g;
}

}  // namespace

const char* to_string(AdapterForm form) {
  switch (form) {
    case AdapterForm::kMerged: return "merged";
    case AdapterForm::kPreAdd: return "preadd";
    case AdapterForm::kFolded: return "folded";
  }
  return "?";
}

int64_t padded_rank(int64_t rank) { return (rank + 15) / 16 * 16; }

int64_t input_width(const InferenceLinearSpec& spec) {
  return spec.d_in + (spec.form == AdapterForm::kFolded ? 2 * padded_rank(spec.rank) : 0);
}

int64_t output_rows(const InferenceLinearSpec& spec) {
  return spec.d_out + (spec.form == AdapterForm::kMerged ? padded_rank(spec.rank) : 0);
}

SparseInferenceLinear::SparseInferenceLinear(SparseEngine& engine, DenseGemmCache& dense,
                                             const InferenceLinearSpec& spec, cudaStream_t stream)
    : spec_(spec), rank_(padded_rank(spec.rank)) {
  require(spec.rank >= 0, "adapter rank must be non-negative");
  const bool merged = spec.form == AdapterForm::kMerged && rank_ > 0;
  const bool preadd = spec.form == AdapterForm::kPreAdd && rank_ > 0;
  const bool folded = spec.form == AdapterForm::kFolded && rank_ > 0;
  if (spec.bias) bias_.reserve(output_rows() * 2);
  // The sparse product: W, [W; L^T] when merged, [W | R~] when folded. ReLU goes last: into
  // the sparse epilogue unless the merged adapter's product still has to add to Y.
  // A token-major layer without an epilogue takes wave bands where they measure faster (each
  // band writes its columns of Y in place). Feature-major, the adapter forms address Y^T's
  // rows as one product's and keep W whole.
  const bool token_major_out = spec.output == OutputLayout::kTokenMajor;
  const Tiling tiling = token_major_out ? Tiling::kAutoBands : Tiling::kNone;
  // The sparse product checks the strides as given (a layout without one, or one narrower
  // than its X or Y, is refused there); the adapter's products use the resolved ones.
  sparse_ = std::make_unique<SparseLinear>(engine, output_rows(), input_width(), spec.tokens, spec.dtype, tiling,
                                           stream, spec.bias ? bias_.get() : nullptr, spec.input,
                                           spec.relu && !merged, spec.output, spec.input_ld, spec.output_ld);
  const int64_t x_ld = input_ld(), y_ld = output_ld();
  if (folded) {
    // L~^T (2 rank_ x d_in) for token-major input, L^T (rank_ x d_in) for feature-major.
    l_.reserve((spec.input == InputLayout::kTokenMajor ? 2 : 1) * rank_ * spec.d_in * 2);
    xl_ = &dense.get(folded_xl_shape(spec, rank_, x_ld), stream);
    return;
  }
  if (rank_ > 0) {
    l_.reserve(spec.d_in * rank_ * 2);
    r_.reserve(rank_ * spec.d_out * 2);
    tr_ = &dense.get(tr_shape(spec, rank_, merged && spec.relu, merged, y_ld), stream);
  }
  if (preadd) {
    t_.reserve(rank_ * spec.tokens * 2);
    xl_ = &dense.get(xl_shape(spec, rank_, x_ld), stream);
  }
}

int64_t SparseInferenceLinear::output_rows() const { return gpu::output_rows(spec_); }

int64_t SparseInferenceLinear::input_width() const { return gpu::input_width(spec_); }

int64_t SparseInferenceLinear::input_ld() const { return spec_.input_ld > 0 ? spec_.input_ld : input_width(); }

int64_t SparseInferenceLinear::output_ld() const { return spec_.output_ld > 0 ? spec_.output_ld : output_rows(); }

void SparseInferenceLinear::set_weights(const void* w, const void* l, const void* r, const void* bias,
                                        cudaStream_t stream) {
  const InferenceLinearSpec& s = spec_;
  const bool folded = s.form == AdapterForm::kFolded && rank_ > 0;
  const int64_t rows = output_rows(), width = input_width();
  // The sparse operand before pruning: W, with L^T below it (merged) or R~ beside it (folded).
  DeviceBuffer sparse_w(rows * width * 2);
  SLOPE_CHECK(cudaMemsetAsync(sparse_w.get(), 0, rows * width * 2, stream));
  SLOPE_CHECK(cudaMemcpy2DAsync(sparse_w.get(), width * 2, w, s.d_in * 2, s.d_in * 2, s.d_out,
                                cudaMemcpyDeviceToDevice, stream));
  DeviceBuffer lt, spread, spread_t;  // temporaries, alive until the sync at the end
  if (rank_ > 0) {
    require(l != nullptr && r != nullptr, "an adapter layer needs L and R");
    // L^T (rank_ x d_in), zero rows for the padding, pruned 2:4 along d_in.
    lt.reserve(rank_ * s.d_in * 2);
    SLOPE_CHECK(cudaMemsetAsync(lt.get(), 0, rank_ * s.d_in * 2, stream));
    DeviceBuffer l_padded(s.d_in * rank_ * 2);
    SLOPE_CHECK(cudaMemsetAsync(l_padded.get(), 0, s.d_in * rank_ * 2, stream));
    SLOPE_CHECK(cudaMemcpy2DAsync(l_padded.get(), rank_ * 2, l, s.rank * 2, s.rank * 2, s.d_in,
                                  cudaMemcpyDeviceToDevice, stream));
    transpose_16bit(l_padded.get(), lt.get(), s.d_in, rank_, stream);
    prune_rows_2to4(lt.get(), lt.get(), nullptr, rank_, s.d_in, s.dtype, stream);
    if (folded) {
      if (s.input == InputLayout::kTokenMajor) {
        // L~^T: L^T's rows at the even rows of 2 rank_ x d_in, odd rows zero.
        SLOPE_CHECK(cudaMemsetAsync(l_.get(), 0, 2 * rank_ * s.d_in * 2, stream));
        SLOPE_CHECK(cudaMemcpy2DAsync(l_.get(), 2 * s.d_in * 2, lt.get(), s.d_in * 2, s.d_in * 2, rank_,
                                      cudaMemcpyDeviceToDevice, stream));
      } else {
        SLOPE_CHECK(cudaMemcpyAsync(l_.get(), lt.get(), rank_ * s.d_in * 2, cudaMemcpyDeviceToDevice, stream));
      }
      // R~ (d_out x 2 rank_): R's rows spread to the even rows of 2 rank_ x d_out, then
      // transposed beside W.
      spread.reserve(2 * rank_ * s.d_out * 2);
      SLOPE_CHECK(cudaMemsetAsync(spread.get(), 0, 2 * rank_ * s.d_out * 2, stream));
      SLOPE_CHECK(cudaMemcpy2DAsync(spread.get(), 2 * s.d_out * 2, r, s.d_out * 2, s.d_out * 2, s.rank,
                                    cudaMemcpyDeviceToDevice, stream));
      spread_t.reserve(s.d_out * 2 * rank_ * 2);
      transpose_16bit(spread.get(), spread_t.get(), 2 * rank_, s.d_out, stream);
      SLOPE_CHECK(cudaMemcpy2DAsync(sparse_w.as<uint8_t>() + s.d_in * 2, width * 2, spread_t.get(), 2 * rank_ * 2,
                                    2 * rank_ * 2, s.d_out, cudaMemcpyDeviceToDevice, stream));
    } else {
      // The pruned L, back in d_in x rank_ layout, for the pre-add form's dense product.
      transpose_16bit(lt.get(), l_.get(), rank_, s.d_in, stream);
      if (s.form == AdapterForm::kMerged)
        SLOPE_CHECK(cudaMemcpyAsync(sparse_w.as<uint8_t>() + s.d_out * s.d_in * 2, lt.get(), rank_ * s.d_in * 2,
                                    cudaMemcpyDeviceToDevice, stream));
      SLOPE_CHECK(cudaMemsetAsync(r_.get(), 0, rank_ * s.d_out * 2, stream));
      SLOPE_CHECK(cudaMemcpyAsync(r_.get(), r, s.rank * s.d_out * 2, cudaMemcpyDeviceToDevice, stream));
    }
  }
  if (s.bias) {
    require(bias != nullptr, "this layer needs a bias");
    SLOPE_CHECK(cudaMemsetAsync(bias_.get(), 0, rows * 2, stream));  // adapter rows get no bias
    SLOPE_CHECK(cudaMemcpyAsync(bias_.get(), bias, s.d_out * 2, cudaMemcpyDeviceToDevice, stream));
  }
  // Row-wise pruning: W's rows are pruned on their own whether or not L^T follows them, and
  // R~'s groups of four hold two values each, which pruning keeps.
  prune_rows_2to4(sparse_w.get(), sparse_w.get(), nullptr, rows, width, s.dtype, stream);
  sparse_->set_weight(sparse_w.get(), stream);
  SLOPE_CHECK(cudaStreamSynchronize(stream));  // the temporaries die here
}

void SparseInferenceLinear::forward(void* x, void* y, cudaStream_t stream) const {
  if (rank_ == 0) {
    sparse_->forward(x, y, stream);
  } else if (spec_.form == AdapterForm::kMerged) {
    sparse_->forward(x, y, stream);  // [Y^T; (X L)^T] or [Y | X L] (+ [b; 0])
    const bool token_major_out = spec_.output == OutputLayout::kTokenMajor;
    const auto* xl = static_cast<const uint8_t*>(y) + spec_.d_out * (token_major_out ? 1 : spec_.tokens) * 2;
    add_tr(xl, y, 1.0f, stream);  // Y += (X L) R in place (+ ReLU)
  } else if (spec_.form == AdapterForm::kFolded) {
    const int64_t t = spec_.tokens;
    auto* ext = static_cast<uint8_t*>(x) + spec_.d_in * 2 * (spec_.input == InputLayout::kTokenMajor ? 1 : t);
    if (spec_.input == InputLayout::kTokenMajor) {
      xl_->run(l_.get(), x, ext, stream);  // T~^T = L~^T X^T, into X's columns past d_in
    } else {
      // The odd rows of T~ meet zero weights, but a zero times a non-finite value left in
      // the caller's buffer is not zero: they are cleared on every call.
      SLOPE_CHECK(cudaMemset2DAsync(ext + t * 2, 2 * t * 2, 0, t * 2, rank_, stream));
      xl_->run(x, l_.get(), ext, stream);  // T = X L, into the even rows of X^T past d_in
    }
    sparse_->forward(x, y, stream);        // Y = [X | T~] [W | R~]^T (+ b), ReLU
  } else {
    xl_->run(x, l_.get(), t_.get(), stream);  // T = X L
    add_tr(t_.get(), y, 0.0f, stream);         // Y = T R
    sparse_->forward(x, y, stream, 1.0f);      // Y = X W^T + Y (+ b), ReLU
  }
}

void SparseInferenceLinear::add_tr(const void* t, void* y, float beta, cudaStream_t stream) const {
  if (spec_.output == OutputLayout::kTokenMajor)
    tr_->run(r_.get(), t, y, stream, 1.0f, beta);  // Y^T = R^T T^T (+ Y^T)
  else
    tr_->run(t, r_.get(), y, stream, 1.0f, beta);  // Y = T R (+ Y), Y column-major
}

}  // namespace slope::gpu
