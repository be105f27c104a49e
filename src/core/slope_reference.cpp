#include "slope/core/slope_reference.hpp"

#include "slope/core/compressed.hpp"
#include "slope/core/reference.hpp"

namespace slope {
namespace {

// a += b (accumulate) or a = b.
void add_or_set(MatrixF& a, const MatrixF& b, bool accumulate) {
  if (!accumulate || a.size() != b.size()) {
    a = b;
    return;
  }
  for (size_t i = 0; i < a.data.size(); ++i) a.data[i] += b.data[i];
}

}  // namespace

SlopeLayerReference::SlopeLayerReference(const MatrixF& w, std::vector<float> bias)
    : pruned_(double_prune(w, {2, 4})), bias_(std::move(bias)) {
  require(bias_.empty() || static_cast<int64_t>(bias_.size()) == w.rows, "bias length must equal W's rows");
  kept_grad_.assign(static_cast<size_t>(w.size() / 2), 0.0f);
  bias_grad_.assign(bias_.size(), 0.0f);
}

MatrixF SlopeLayerReference::forward(const MatrixF& x) const {
  MatrixF y = linear_forward(x, pruned_.w_r, bias_.empty() ? nullptr : &bias_);
  if (has_adapter()) {
    const MatrixF h = linear_forward(x, l_t_, nullptr);                   // X L, t x r
    const MatrixF hr = linear_forward(h, transpose(r_), nullptr);         // (X L) R
    for (size_t i = 0; i < y.data.size(); ++i) y.data[i] += hr.data[i];
  }
  return y;
}

MatrixF SlopeLayerReference::backward(const MatrixF& x, const MatrixF& dy, bool accumulate) {
  const MatrixF dw = linear_grad_weight(dy, x);
  // The kept elements of dW in W's compressed order: compress dW on W's own mask.
  const CompressedNm kept = compress_with_mask(apply_mask(dw, pruned_.mask_r), pruned_.mask_r, {2, 4});
  for (size_t i = 0; i < kept_grad_.size(); ++i) kept_grad_[i] = (accumulate ? kept_grad_[i] : 0.0f) + kept.values[i];
  if (!bias_.empty()) {
    const auto db = linear_grad_bias(dy);
    for (size_t i = 0; i < bias_grad_.size(); ++i) bias_grad_[i] = (accumulate ? bias_grad_[i] : 0.0f) + db[i];
  }
  MatrixF dx = linear_grad_input(dy, pruned_.w_rc);
  if (has_adapter()) {
    const MatrixF h = linear_forward(x, l_t_, nullptr);         // t x r
    const MatrixF dh = linear_grad_input(dy, transpose(r_));    // dY R^T, t x r
    add_or_set(r_grad_, transpose(linear_grad_weight(dy, h)), accumulate);  // H^T dY
    MatrixF dlt = linear_grad_weight(dh, x);                    // dH^T X, r x d_in
    for (size_t i = 0; i < dlt.data.size(); ++i)
      if (l_t_.data[i] == 0.0f) dlt.data[i] = 0.0f;            // L's pruned entries stay zero
    add_or_set(l_t_grad_, dlt, accumulate);
    const MatrixF dx_adapter = linear_grad_input(dh, l_t_);     // dH L^T
    for (size_t i = 0; i < dx.data.size(); ++i) dx.data[i] += dx_adapter.data[i];
  }
  return dx;
}

std::vector<float> SlopeLayerReference::kept_values() const {
  return compress_with_mask(pruned_.w_r, pruned_.mask_r, {2, 4}).values;
}

void SlopeLayerReference::set_kept_values(const std::vector<float>& kept) {
  require(kept.size() * 2 == pruned_.w_r.data.size(), "kept values: length must be half of W's elements");
  size_t next = 0;
  for (size_t i = 0; i < pruned_.w_r.data.size(); ++i)
    if (pruned_.mask_r.data[i]) pruned_.w_r.data[i] = kept[next++];
  pruned_.w_rc = apply_mask(pruned_.w_r, pruned_.mask_rc);
}

void SlopeLayerReference::change_column_mask() {
  pruned_.mask_rc = column_mask_within(pruned_.w_r, pruned_.mask_r, {2, 4});
  pruned_.w_rc = apply_mask(pruned_.w_r, pruned_.mask_rc);
}

void SlopeLayerReference::enable_adapter(const MatrixF& l_t, const MatrixF& r) {
  require(l_t.cols == pruned_.w_r.cols && r.cols == pruned_.w_r.rows && l_t.rows == r.rows,
          "adapter: L^T must be r x d_in and R r x d_out");
  l_t_ = prune(l_t, {2, 4}, PruneAxis::kRows);
  r_ = r;
  l_t_grad_ = MatrixF(l_t.rows, l_t.cols);
  r_grad_ = MatrixF(r.rows, r.cols);
}

}  // namespace slope
