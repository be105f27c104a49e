#include "slope/gpu/inference_linear.hpp"

#include <algorithm>
#include <string>

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

// The folded form's extension columns per unit of (padded) rank: T's columns interleaved from
// the P projections, or, with one, spread to the even columns (a row holds every one of T's).
int64_t folded_groups(const InferenceLinearSpec& s) { return std::max<int64_t>(projection_count(s), 2); }

// True where the folded thin product computes T alone and writes it to every other row of X^T
// (feature-major, one projection); otherwise it computes every extension column.
bool folded_computes_t_alone(const InferenceLinearSpec& s) {
  return s.input == InputLayout::kFeatureMajor && projection_count(s) == 1;
}

// The folded form's thin product: T~ (t x groups r, T's columns interleaved or spread, zero
// elsewhere) written into the input buffer past X's d_in features.
GemmShape folded_xl_shape(const InferenceLinearSpec& s, int64_t r, int64_t x_ld) {
  GemmShape g;
  const int64_t ext = folded_groups(s) * r;
  if (s.input == InputLayout::kTokenMajor) {
    // Column-major T~^T (ext x t, ld x_ld) = L~^T (stored ext x d_in row-major: op T) X^T
    // (X row-major t x x_ld is column-major x_ld x t: its first d_in rows, op N). With one
    // projection T's columns sit two elements apart in a token's row, which no leading
    // dimension can express: the product computes the zero columns too.
    g = {Op::kT, Op::kN, ext, s.tokens, s.d_in, s.d_in, x_ld, x_ld, s.dtype, false, false};
  } else if (folded_computes_t_alone(s)) {
    // Column-major T (t x r) = X (X^T row-major is column-major t x d_in, op N) L (L^T
    // row-major r x d_in is column-major d_in x r, op N), with leading dimension 2t: column j
    // lands on row d_in + 2j of X^T, and the odd rows are zeroed separately. Half the work of
    // computing the zero columns, which makes the product memory-bound up to r = 128.
    g = {Op::kN, Op::kN, s.tokens, r, s.d_in, s.tokens, s.d_in, 2 * s.tokens, s.dtype, false, false};
  } else {
    // Column-major T~ (t x ext) = X L~, every column one of some projection's T.
    g = {Op::kN, Op::kN, s.tokens, ext, s.d_in, s.tokens, s.d_in, s.tokens, s.dtype, false, false};
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

// The layer's sparse product: W, [W; L^T] when merged, [W | R~] when folded. ReLU goes last:
// into the sparse epilogue unless the merged adapter's product still has to add to Y. The
// strides are the spec's as given (a layout without one, or one narrower than its X or Y, is
// refused there).
SparseShape sparse_product_shape(const InferenceLinearSpec& spec) {
  const bool merged = spec.form == AdapterForm::kMerged && padded_rank(spec.rank) > 0;
  SparseShape shape{output_rows(spec), input_width(spec), spec.tokens, spec.dtype,
                    spec.bias, spec.input, spec.relu && !merged, spec.output};
  shape.in_ld = spec.input_ld;
  shape.out_ld = spec.output_ld;
  return shape;
}

// A token-major layer without an epilogue takes wave bands where they measure faster (each
// band writes its columns of Y in place). Feature-major, the adapter forms address Y^T's rows
// as one product's and keep W whole.
Tiling sparse_product_tiling(const InferenceLinearSpec& spec) {
  return spec.output == OutputLayout::kTokenMajor ? Tiling::kAutoBands : Tiling::kNone;
}

}  // namespace

std::vector<SparseShape> inference_linear_shapes(const SparseEngine& engine, const InferenceLinearSpec& spec) {
  return sparse_linear_shapes(engine, sparse_product_shape(spec), sparse_product_tiling(spec));
}

const char* to_string(AdapterForm form) {
  switch (form) {
    case AdapterForm::kMerged: return "merged";
    case AdapterForm::kPreAdd: return "preadd";
    case AdapterForm::kFolded: return "folded";
  }
  return "?";
}

int64_t padded_rank(int64_t rank) { return (rank + 15) / 16 * 16; }

int64_t projection_count(const InferenceLinearSpec& spec) {
  return spec.projection_rows.empty() ? 1 : static_cast<int64_t>(spec.projection_rows.size());
}

int64_t input_width(const InferenceLinearSpec& spec) {
  return spec.d_in + (spec.form == AdapterForm::kFolded ? folded_groups(spec) * padded_rank(spec.rank) : 0);
}

int64_t output_rows(const InferenceLinearSpec& spec) {
  return spec.d_out + (spec.form == AdapterForm::kMerged ? projection_count(spec) * padded_rank(spec.rank) : 0);
}

SparseInferenceLinear::SparseInferenceLinear(SparseEngine& engine, DenseGemmCache& dense,
                                             const InferenceLinearSpec& spec, cudaStream_t stream)
    : spec_(spec), rank_(padded_rank(spec.rank)), projections_(projection_count(spec)) {
  require(spec.rank >= 0, "adapter rank must be non-negative");
  row_offsets_.push_back(0);
  for (int64_t rows : spec.projection_rows) {
    require(rows > 0, "every fused projection needs rows (got " + std::to_string(rows) + ")");
    row_offsets_.push_back(row_offsets_.back() + rows);
  }
  if (spec.projection_rows.empty()) row_offsets_.push_back(spec.d_out);
  require(row_offsets_.back() == spec.d_out, "the fused projections' rows add up to " +
                                                  std::to_string(row_offsets_.back()) + ", not d_out = " +
                                                  std::to_string(spec.d_out));
  const int64_t adapters = projections_ * rank_;  // the adapters side by side
  const bool merged = spec.form == AdapterForm::kMerged && rank_ > 0;
  const bool preadd = spec.form == AdapterForm::kPreAdd && rank_ > 0;
  const bool folded = spec.form == AdapterForm::kFolded && rank_ > 0;
  if (spec.bias) bias_.reserve(output_rows() * 2);
  const SparseShape product = sparse_product_shape(spec);
  sparse_ = std::make_unique<SparseLinear>(engine, product.m, product.k, product.n, product.dtype,
                                           sparse_product_tiling(spec), stream, spec.bias ? bias_.get() : nullptr,
                                           product.input, product.relu, product.output, product.in_ld,
                                           product.out_ld);
  // The adapter's products use the resolved strides.
  const int64_t x_ld = input_ld(), y_ld = output_ld();
  if (folded) {
    // The rows of L~^T the thin product computes with (L^T alone when it computes T alone).
    l_.reserve((folded_computes_t_alone(spec) ? 1 : folded_groups(spec)) * rank_ * spec.d_in * 2);
    xl_ = &dense.get(folded_xl_shape(spec, rank_, x_ld), stream);
    return;
  }
  if (rank_ > 0) {
    l_.reserve(spec.d_in * adapters * 2);
    r_.reserve(adapters * spec.d_out * 2);
    tr_ = &dense.get(tr_shape(spec, adapters, merged && spec.relu, merged, y_ld), stream);
  }
  if (preadd) {
    t_.reserve(adapters * spec.tokens * 2);
    xl_ = &dense.get(xl_shape(spec, adapters, x_ld), stream);
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
    const int64_t p_count = projections_, adapters = p_count * rank_;
    // L^T (P rank_ x d_in): each projection's rank_ rows (zero rows for the padding), pruned
    // 2:4 along d_in.
    lt.reserve(adapters * s.d_in * 2);
    DeviceBuffer l_padded(s.d_in * adapters * 2);
    SLOPE_CHECK(cudaMemsetAsync(l_padded.get(), 0, s.d_in * adapters * 2, stream));
    for (int64_t p = 0; p < p_count; ++p)
      SLOPE_CHECK(cudaMemcpy2DAsync(l_padded.as<uint8_t>() + p * rank_ * 2, adapters * 2,
                                    static_cast<const uint8_t*>(l) + p * s.rank * 2, p_count * s.rank * 2,
                                    s.rank * 2, s.d_in, cudaMemcpyDeviceToDevice, stream));
    transpose_16bit(l_padded.get(), lt.get(), s.d_in, adapters, stream);
    prune_rows_2to4(lt.get(), lt.get(), nullptr, adapters, s.d_in, s.dtype, stream);
    // R_p's rows j into rows p * first + j * stride of `dst` (d_out wide), only in projection
    // p's columns: R block-diagonal (first rank_, stride 1), or interleaved for the fold.
    auto place_r = [&](uint8_t* dst, int64_t first, int64_t stride) {
      for (int64_t p = 0; p < p_count; ++p) {
        const int64_t col = row_offsets_[static_cast<size_t>(p)];
        const int64_t cols = row_offsets_[static_cast<size_t>(p) + 1] - col;
        SLOPE_CHECK(cudaMemcpy2DAsync(dst + (p * first * s.d_out + col) * 2, stride * s.d_out * 2,
                                      static_cast<const uint8_t*>(r) + (p * s.rank * s.d_out + col) * 2, s.d_out * 2,
                                      cols * 2, s.rank, cudaMemcpyDeviceToDevice, stream));
      }
    };
    if (folded) {
      // Extension column c holds T_p's column c / groups for p = c % groups (zero where p has
      // no projection: the odd columns of a lone one). L~^T's rows follow the same order.
      const int64_t groups = folded_groups(s);
      const int64_t l_rows = folded_computes_t_alone(s) ? rank_ : groups * rank_;
      const int64_t l_stride = l_rows / rank_;
      SLOPE_CHECK(cudaMemsetAsync(l_.get(), 0, l_rows * s.d_in * 2, stream));
      for (int64_t p = 0; p < p_count; ++p)
        SLOPE_CHECK(cudaMemcpy2DAsync(l_.as<uint8_t>() + p * s.d_in * 2, l_stride * s.d_in * 2,
                                      lt.as<uint8_t>() + p * rank_ * s.d_in * 2, s.d_in * 2, s.d_in * 2, rank_,
                                      cudaMemcpyDeviceToDevice, stream));
      // R~ (d_out x groups rank_): R's rows in the extension's order, transposed beside W.
      const int64_t ext = groups * rank_;
      spread.reserve(ext * s.d_out * 2);
      SLOPE_CHECK(cudaMemsetAsync(spread.get(), 0, ext * s.d_out * 2, stream));
      place_r(spread.as<uint8_t>(), 1, groups);
      spread_t.reserve(s.d_out * ext * 2);
      transpose_16bit(spread.get(), spread_t.get(), ext, s.d_out, stream);
      SLOPE_CHECK(cudaMemcpy2DAsync(sparse_w.as<uint8_t>() + s.d_in * 2, width * 2, spread_t.get(), ext * 2, ext * 2,
                                    s.d_out, cudaMemcpyDeviceToDevice, stream));
    } else {
      // The pruned L, back in d_in x P rank_ layout, for the pre-add form's dense product.
      transpose_16bit(lt.get(), l_.get(), adapters, s.d_in, stream);
      if (s.form == AdapterForm::kMerged)
        SLOPE_CHECK(cudaMemcpyAsync(sparse_w.as<uint8_t>() + s.d_out * s.d_in * 2, lt.get(), adapters * s.d_in * 2,
                                    cudaMemcpyDeviceToDevice, stream));
      SLOPE_CHECK(cudaMemsetAsync(r_.get(), 0, adapters * s.d_out * 2, stream));
      place_r(r_.as<uint8_t>(), rank_, 1);
    }
  }
  if (s.bias) {
    require(bias != nullptr, "this layer needs a bias");
    SLOPE_CHECK(cudaMemsetAsync(bias_.get(), 0, rows * 2, stream));  // adapter rows get no bias
    SLOPE_CHECK(cudaMemcpyAsync(bias_.get(), bias, s.d_out * 2, cudaMemcpyDeviceToDevice, stream));
  }
  // Row-wise pruning: W's rows are pruned on their own whether or not L^T follows them, and
  // R~'s groups of four hold at most two values of a row, which pruning keeps.
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
      if (folded_computes_t_alone(spec_)) {
        // The odd rows of T~ meet zero weights, but a zero times a non-finite value left in
        // the caller's buffer is not zero: they are cleared on every call.
        SLOPE_CHECK(cudaMemset2DAsync(ext + t * 2, 2 * t * 2, 0, t * 2, rank_, stream));
      }
      xl_->run(x, l_.get(), ext, stream);  // T = X L into the even rows of X^T past d_in, or T~ = X L~
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
