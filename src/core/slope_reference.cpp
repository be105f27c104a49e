#include "slope/core/slope_reference.hpp"

#include "slope/core/compressed.hpp"
#include "slope/core/reference.hpp"

namespace slope {

SlopeLayerReference::SlopeLayerReference(const MatrixF& w, std::vector<float> bias)
    : pruned_(double_prune(w, {2, 4})), bias_(std::move(bias)) {
  require(bias_.empty() || static_cast<int64_t>(bias_.size()) == w.rows, "bias length must equal W's rows");
  kept_grad_.assign(static_cast<size_t>(w.size() / 2), 0.0f);
  bias_grad_.assign(bias_.size(), 0.0f);
}

MatrixF SlopeLayerReference::forward(const MatrixF& x) const {
  return linear_forward(x, pruned_.w_r, bias_.empty() ? nullptr : &bias_);
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
  return linear_grad_input(dy, pruned_.w_rc);
}

}  // namespace slope
