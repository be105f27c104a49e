// CPU reference of SLoPe's training layer (the oracle of SlopeLinear): forward with W^R,
// input gradient with the double-pruned W^{R,C}, weight gradient kept on W's mask only (in
// the order of W's compressed values) and accumulated across micro-batches, bias gradient.
// Token-major matrices: X is t x d_in, Y and dY are t x d_out.
#pragma once

#include <vector>

#include "slope/core/matrix.hpp"
#include "slope/core/nm_prune.hpp"

namespace slope {

class SlopeLayerReference {
 public:
  // Prunes W (d_out x d_in) 2:4 by rows and builds W^{R,C}. `bias` may be empty.
  SlopeLayerReference(const MatrixF& w, std::vector<float> bias);

  MatrixF forward(const MatrixF& x) const;
  // Returns dX; adds (accumulate) or writes the kept weight gradient and the bias gradient.
  MatrixF backward(const MatrixF& x, const MatrixF& dy, bool accumulate);

  const DoublePruned& weights() const { return pruned_; }
  const std::vector<float>& kept_grad() const { return kept_grad_; }
  const std::vector<float>& bias_grad() const { return bias_grad_; }

 private:
  DoublePruned pruned_;
  std::vector<float> bias_;
  std::vector<float> kept_grad_;
  std::vector<float> bias_grad_;
};

}  // namespace slope
