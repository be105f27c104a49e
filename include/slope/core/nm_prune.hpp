// N:M magnitude pruning on the CPU: the reference for every GPU pruning kernel.
//
// In every group of M consecutive elements (along a row, or down a column) the N of largest
// magnitude are kept. Tie breaking is deterministic: of two equal magnitudes the element with
// the lower index in its group ranks higher; NaN ranks above every number. The GPU kernels
// use the same rule, so CPU and GPU masks agree bit for bit.
#pragma once

#include <cstdint>

#include "slope/core/matrix.hpp"

namespace slope {

struct NmPattern {
  int n = 2;
  int m = 4;
};

// Throws kInvalidInput unless 1 <= n <= m <= 16.
void validate(NmPattern pattern);

enum class PruneAxis {
  kRows,     // groups of M consecutive elements within a row (SLoPe's W^R)
  kColumns,  // groups of M consecutive elements within a column
};

// Rank of element `i` within its group of `m` magnitudes: how many group members outrank it.
// Exposed because the GPU kernels reimplement exactly this rule.
int rank_in_group(const float* group, int m, int64_t stride, int i);

// The N:M mask of `w` along `axis`. Throws kInvalidInput if the dimension along `axis` is
// not divisible by M or the pattern is invalid. Exactly N elements of every group are kept.
Mask nm_mask(const MatrixF& w, NmPattern pattern, PruneAxis axis);

// w with the elements outside `mask` set to zero.
MatrixF apply_mask(const MatrixF& w, const Mask& mask);

// apply_mask(w, nm_mask(w, pattern, axis)).
MatrixF prune(const MatrixF& w, NmPattern pattern, PruneAxis axis);

// True if no group along `axis` has more than N nonzero elements.
bool is_nm_sparse(const MatrixF& w, NmPattern pattern, PruneAxis axis);

// SLoPe's double pruning: W^R = W pruned along rows, W^{R,C} = W^R pruned along columns.
// mask_rc is a subset of mask_r, so W^{R,C} is N:M along rows and along columns.
struct DoublePruned {
  MatrixF w_r;
  MatrixF w_rc;
  Mask mask_r;
  Mask mask_rc;
};
DoublePruned double_prune(const MatrixF& w, NmPattern pattern);

// Double pruning with W's row mask already fixed (SLoPe keeps W's mask for the whole run and
// recomputes only the column mask): W^{R,C} from the current values of W^R.
Mask column_mask_within(const MatrixF& w_r, const Mask& mask_r, NmPattern pattern);

}  // namespace slope
