// SLoPe's inference layer: Y = act(X W^T + (X L) R + b) with W 2:4-sparse and a lazy
// low-rank adapter (L: d_in x r, R: r x d_out). Output feature-major (Y^T, d_out x t) or
// token-major (Y, t x d_out; sparselt_plan.hpp says why it is faster on the H200, and what it
// costs).
//
// Three forms, same function:
//  - kMerged (the paper's): L^T joins W as r extra rows, pruned 2:4 with it, so one sparse
//    product yields Y^T and (X L)^T (token-major: Y and X L side by side in each token's
//    row); then Y += (X L) R in one cuBLASLt call with beta = 1 that reads the (X L) rows
//    (columns) in place (ReLU in its epilogue, bias in the sparse one).
//  - kPreAdd (ours): T = X L and Y = T R first (two small dense products), then the sparse
//    product accumulates onto Y with beta = 1 and applies bias and ReLU in its epilogue. It
//    saves the merged form's extra pass over Y, which costs most where d_out is large.
//  - kFolded (ours): the adapter rides in the sparse product's K dimension. With T = X L,
//    X W^T + T R = [X | T~] [W | R~]^T, where T~ spreads T's columns to the even columns of
//    t x 2r (odd columns zero) and R~ puts R^T's columns at W's extension's even columns:
//    every group of four extension columns then holds two values, so [W | R~] is 2:4 and
//    one sparse product with K = d_in + 2r yields the whole output, bias and ReLU in its
//    epilogue. No pass over Y beyond the one the layer makes anyway; the price is 2r/d_in
//    more sparse work and the thin product T~ = X L~. T~ is written into the input buffer
//    past X's d_in features, so the layer's input is input_width() wide (columns of X when
//    token-major, rows of X^T when feature-major) and the caller allocates it so. With
//    feature-major input the product computes T alone (its rows two apart) and the odd
//    rows are cleared; token-major, it computes the zero columns too.
// L is pruned 2:4 along d_in in both forms (the merged form's pruning), so they agree.
// Ranks are padded with zeros to a multiple of 16: the sparse rows and the tensor cores
// need it, and padding changes no result.
//
// Fused projections (a decoder's q, k and v in one product) each keep an adapter of their
// own: P adapters of rank r, R_p feeding only projection p's rows of W. The merged and
// pre-add forms run them as one adapter of rank P r whose R is block-diagonal. The folded
// form needs less: a row of projection p meets only T_p's columns, so T's columns can be
// interleaved (column c from projection c mod P) and every group of four extension columns
// still holds at most two of one row's values. The extension is then P r columns, not
// 2 P r, with no zero columns to compute (P = 1 keeps the 2r spread above).
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <vector>

#include "slope/core/dtype.hpp"
#include "slope/gpu/dense_gemm.hpp"
#include "slope/gpu/device_buffer.hpp"
#include "slope/gpu/sparse_engine.hpp"
#include "slope/gpu/sparse_linear.hpp"

namespace slope::gpu {

enum class AdapterForm { kMerged, kPreAdd, kFolded };
const char* to_string(AdapterForm form);

struct InferenceLinearSpec {
  int64_t d_out = 0;
  int64_t d_in = 0;
  int64_t rank = 0;  // 0: no adapter
  int64_t tokens = 0;
  DType dtype = DType::kF16;
  InputLayout input = InputLayout::kTokenMajor;
  bool bias = false;
  bool relu = false;
  AdapterForm form = AdapterForm::kMerged;
  OutputLayout output = OutputLayout::kFeatureMajor;
  // Row strides in elements of a token-major X and Y, for buffers wider than the layer reads
  // or writes (e.g. the next layer's adapter features past this layer's output); 0: exactly
  // input_width() and output_rows().
  int64_t input_ld = 0;
  int64_t output_ld = 0;
  // Fused projections: the sizes of their consecutive row ranges of W (summing to d_out),
  // each with an adapter of `rank`; empty: one. L is then d_in x P rank ([L_1 ... L_P]) and R
  // P rank x d_out, R_p in rows p rank.. and in projection p's columns (the rest is ignored).
  std::vector<int64_t> projection_rows = {};
};

// Rank rounded up to the multiple of 16 that the layer uses.
int64_t padded_rank(int64_t rank);
// The fused projections of a spec (1 where it names none): its adapters' count.
int64_t projection_count(const InferenceLinearSpec& spec);
// The features a layer of this spec reads (d_in, plus the folded form's max(P, 2) r adapter
// features) and the outputs its sparse product writes (d_out, plus the merged form's P r X L
// outputs):
// what a caller sizes the buffers it chains layers through by, before building them.
int64_t input_width(const InferenceLinearSpec& spec);
int64_t output_rows(const InferenceLinearSpec& spec);
// The sparse shapes a layer of this spec asks `engine` to plan (sparse_linear_shapes of its
// sparse product): what a caller passes to SparseEngine::prepare_selections before building.
std::vector<SparseShape> inference_linear_shapes(const SparseEngine& engine, const InferenceLinearSpec& spec);

class SparseInferenceLinear {
 public:
  SparseInferenceLinear(SparseEngine& engine, DenseGemmCache& dense, const InferenceLinearSpec& spec,
                        cudaStream_t stream);
  SparseInferenceLinear(const SparseInferenceLinear&) = delete;
  SparseInferenceLinear& operator=(const SparseInferenceLinear&) = delete;

  // Device 16-bit buffers: w (d_out x d_in, dense: pruned here), l (d_in x P rank), r (P rank
  // x d_out), bias (d_out). l, r and bias may be null when unused.
  void set_weights(const void* w, const void* l, const void* r, const void* bias, cudaStream_t stream);
  // Y^T into `y`, which holds output_rows() x tokens elements; Y^T is its first d_out rows.
  // Token-major: Y, tokens rows of output_ld() elements, Y the first d_out of each (the
  // merged form's X L follows them).
  // `x` is input_width() features wide (its rows when feature-major; token-major, the first
  // input_width() of each row of input_ld() elements); the folded form writes its adapter
  // features past the first d_in, the other forms only read x.
  void forward(void* x, void* y, cudaStream_t stream) const;
  int64_t output_rows() const;
  int64_t input_width() const;
  int64_t input_ld() const;   // token-major X's row stride
  int64_t output_ld() const;  // token-major Y's row stride
  int64_t rank() const { return rank_; }  // per projection, padded
  int64_t projections() const { return projections_; }
  const InferenceLinearSpec& spec() const { return spec_; }

 private:
  // Y (+)= T R through tr_, whose shape takes (T, R) for Y^T and (R, T) for a token-major Y.
  void add_tr(const void* t, void* y, float beta, cudaStream_t stream) const;

  InferenceLinearSpec spec_;
  int64_t rank_;         // per projection, padded
  int64_t projections_;  // P
  std::vector<int64_t> row_offsets_;  // each projection's first row of W, and d_out last
  std::unique_ptr<SparseLinear> sparse_;
  DeviceBuffer l_, r_, bias_, t_;
  const DenseGemm* xl_ = nullptr;  // T = X L (pre-add form), T~ = X L~ (folded form)
  const DenseGemm* tr_ = nullptr;  // Y (+)= T R
};

}  // namespace slope::gpu
