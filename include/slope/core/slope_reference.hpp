// CPU reference of SLoPe's training layer (the oracle of SlopeLinear): forward with W^R,
// input gradient with the double-pruned W^{R,C}, weight gradient kept on W's mask only (in
// the order of W's compressed values) and accumulated across micro-batches, bias gradient,
// and the optional lazy low-rank adapter Y += (X L) R with L^T (r x d_in) 2:4 along d_in.
// Token-major matrices: X is t x d_in, Y and dY are t x d_out.
//
// Training: W's row mask is fixed for the whole run; its kept values change at every
// optimizer step (set_kept_values), W^{R,C} follows them on a column mask that changes only
// when change_column_mask() is called (every mask_change_freq steps).
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
  // Returns dX; adds (accumulate) or writes the kept weight gradient, the bias gradient and
  // the adapter's gradients.
  MatrixF backward(const MatrixF& x, const MatrixF& dy, bool accumulate);

  const DoublePruned& weights() const { return pruned_; }
  const std::vector<float>& kept_grad() const { return kept_grad_; }
  const std::vector<float>& bias_grad() const { return bias_grad_; }
  std::vector<float>& bias() { return bias_; }

  // W's kept values in the order of its compressed values (row-major, ascending position).
  std::vector<float> kept_values() const;
  // New kept values (same order): updates W^R and W^{R,C} on the current column mask.
  void set_kept_values(const std::vector<float>& kept);
  // Recomputes W^{R,C}'s column mask from the current W^R (slope::column_mask_within).
  void change_column_mask();

  // Switches the adapter on: L^T (r x d_in, pruned 2:4 along its rows here) and R (r x d_out).
  void enable_adapter(const MatrixF& l_t, const MatrixF& r);
  bool has_adapter() const { return l_t_.rows > 0; }
  MatrixF& adapter_lt() { return l_t_; }
  MatrixF& adapter_r() { return r_; }
  // dL^T (zero where L^T is pruned) and dR.
  const MatrixF& adapter_lt_grad() const { return l_t_grad_; }
  const MatrixF& adapter_r_grad() const { return r_grad_; }

 private:
  DoublePruned pruned_;
  std::vector<float> bias_;
  std::vector<float> kept_grad_;
  std::vector<float> bias_grad_;
  MatrixF l_t_, r_, l_t_grad_, r_grad_;
};

}  // namespace slope
