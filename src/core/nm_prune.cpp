#include "slope/core/nm_prune.hpp"

#include <cmath>
#include <limits>
#include <string>

namespace slope {
namespace {

float magnitude(float v) {
  return std::isnan(v) ? std::numeric_limits<float>::infinity() : std::fabs(v);
}

void check_divisible(const MatrixF& w, NmPattern pattern, PruneAxis axis) {
  validate(pattern);
  const int64_t extent = axis == PruneAxis::kRows ? w.cols : w.rows;
  require(extent % pattern.m == 0,
          std::string(axis == PruneAxis::kRows ? "columns" : "rows") + " (" +
              std::to_string(extent) + ") must be divisible by M=" + std::to_string(pattern.m) +
              " for " + std::to_string(pattern.n) + ":" + std::to_string(pattern.m) + " pruning");
}

}  // namespace

void validate(NmPattern pattern) {
  require(pattern.n >= 1 && pattern.m >= 1, "N and M must be at least 1");
  require(pattern.n <= pattern.m, "N:M pattern needs N <= M (got " + std::to_string(pattern.n) +
                                      ":" + std::to_string(pattern.m) + ")");
  require(pattern.m <= 16, "N:M pattern needs M <= 16 (got M=" + std::to_string(pattern.m) + ")");
}

int rank_in_group(const float* group, int m, int64_t stride, int i) {
  const float mine = magnitude(group[i * stride]);
  int rank = 0;
  for (int j = 0; j < m; ++j) {
    const float other = magnitude(group[j * stride]);
    if (other > mine || (other == mine && j < i)) ++rank;
  }
  return rank;
}

Mask nm_mask(const MatrixF& w, NmPattern pattern, PruneAxis axis) {
  check_divisible(w, pattern, axis);
  Mask mask(w.rows, w.cols, 0);
  if (axis == PruneAxis::kRows) {
    for (int64_t r = 0; r < w.rows; ++r)
      for (int64_t g = 0; g < w.cols; g += pattern.m) {
        const float* group = &w(r, g);
        for (int i = 0; i < pattern.m; ++i)
          mask(r, g + i) = rank_in_group(group, pattern.m, 1, i) < pattern.n;
      }
  } else {
    const int64_t stride = w.cols;  // a column's elements lie a row apart
    for (int64_t c = 0; c < w.cols; ++c)
      for (int64_t g = 0; g < w.rows; g += pattern.m) {
        const float* group = &w(g, c);
        for (int i = 0; i < pattern.m; ++i)
          mask(g + i, c) = rank_in_group(group, pattern.m, stride, i) < pattern.n;
      }
  }
  return mask;
}

MatrixF apply_mask(const MatrixF& w, const Mask& mask) {
  require(w.rows == mask.rows && w.cols == mask.cols, "mask shape differs from matrix shape");
  MatrixF out = w;
  for (size_t i = 0; i < out.data.size(); ++i)
    if (!mask.data[i]) out.data[i] = 0.0f;
  return out;
}

MatrixF prune(const MatrixF& w, NmPattern pattern, PruneAxis axis) {
  return apply_mask(w, nm_mask(w, pattern, axis));
}

bool is_nm_sparse(const MatrixF& w, NmPattern pattern, PruneAxis axis) {
  check_divisible(w, pattern, axis);
  const bool rows = axis == PruneAxis::kRows;
  const int64_t outer = rows ? w.rows : w.cols;
  const int64_t inner = rows ? w.cols : w.rows;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t g = 0; g < inner; g += pattern.m) {
      int nonzero = 0;
      for (int i = 0; i < pattern.m; ++i) {
        const float v = rows ? w(o, g + i) : w(g + i, o);
        nonzero += v != 0.0f;
      }
      if (nonzero > pattern.n) return false;
    }
  return true;
}

Mask column_mask_within(const MatrixF& w_r, const Mask& mask_r, NmPattern pattern) {
  Mask mask_c = nm_mask(w_r, pattern, PruneAxis::kColumns);
  for (size_t i = 0; i < mask_c.data.size(); ++i) mask_c.data[i] &= mask_r.data[i];
  return mask_c;
}

DoublePruned double_prune(const MatrixF& w, NmPattern pattern) {
  DoublePruned out;
  out.mask_r = nm_mask(w, pattern, PruneAxis::kRows);
  out.w_r = apply_mask(w, out.mask_r);
  out.mask_rc = column_mask_within(out.w_r, out.mask_r, pattern);
  out.w_rc = apply_mask(out.w_r, out.mask_rc);
  return out;
}

}  // namespace slope
