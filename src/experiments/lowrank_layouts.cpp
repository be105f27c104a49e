#include "slope/experiments/lowrank_layouts.hpp"

namespace slope {

std::string to_string(const LowRankLayout& w) {
  return std::string(w.feature_major ? "feature" : "token") + (w.l_transposed ? ":Lt" : ":L") +
         (w.r_transposed ? "+Rt" : "+R");
}

gpu::GemmShape low_rank_first_shape(const LowRankLayout& w, int64_t t, int64_t d, int64_t r, DType dtype) {
  using gpu::Op;
  if (!w.feature_major)  // T^T (r x t) = L^T X^T: a = L, b = X
    return {w.l_transposed ? Op::kT : Op::kN, Op::kN, r, t, d, w.l_transposed ? d : r, d, r, dtype, false, false};
  // T (t x r) = X L: a = X (column-major t x d), b = L
  return {Op::kN, w.l_transposed ? Op::kN : Op::kT, t, r, d, t, w.l_transposed ? d : r, t, dtype, false, false};
}

gpu::GemmShape low_rank_second_shape(const LowRankLayout& w, int64_t t, int64_t d, int64_t r, DType dtype) {
  using gpu::Op;
  if (!w.feature_major)  // Y^T (d x t) = R^T T^T: a = R, b = T
    return {w.r_transposed ? Op::kT : Op::kN, Op::kN, d, t, r, w.r_transposed ? r : d, r, d, dtype, false, false};
  // Y (t x d) = T R: a = T (column-major t x r), b = R
  return {Op::kN, w.r_transposed ? Op::kN : Op::kT, t, d, r, t, w.r_transposed ? r : d, t, dtype, false, false};
}

}  // namespace slope
