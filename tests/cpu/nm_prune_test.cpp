#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "slope/core/error.hpp"
#include "slope/core/nm_prune.hpp"
#include "slope/core/random.hpp"

namespace slope {
namespace {

struct Case {
  int n, m;
  int64_t rows, cols;
};

class NmPruneProperties : public ::testing::TestWithParam<Case> {};

int count_kept_in_row_group(const Mask& mask, int64_t r, int64_t g, int m) {
  int kept = 0;
  for (int i = 0; i < m; ++i) kept += mask(r, g + i);
  return kept;
}

TEST_P(NmPruneProperties, RowMaskKeepsExactlyNLargest) {
  const Case c = GetParam();
  const NmPattern p{c.n, c.m};
  const MatrixF w = random_matrix(c.rows, c.cols, 1000 + c.n * 17 + c.m);
  const Mask mask = nm_mask(w, p, PruneAxis::kRows);
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t g = 0; g < w.cols; g += c.m) {
      ASSERT_EQ(count_kept_in_row_group(mask, r, g, c.m), c.n);
      // Every kept magnitude is >= every pruned magnitude of the group.
      float min_kept = INFINITY, max_pruned = 0;
      for (int i = 0; i < c.m; ++i) {
        const float a = std::fabs(w(r, g + i));
        if (mask(r, g + i)) min_kept = std::min(min_kept, a);
        else max_pruned = std::max(max_pruned, a);
      }
      ASSERT_GE(min_kept, max_pruned);
    }
  const MatrixF pruned = apply_mask(w, mask);
  EXPECT_TRUE(is_nm_sparse(pruned, p, PruneAxis::kRows));
  if (c.n < c.m) {
    EXPECT_FALSE(is_nm_sparse(w, p, PruneAxis::kRows));
  }
}

TEST_P(NmPruneProperties, PruningIsIdempotent) {
  const Case c = GetParam();
  const NmPattern p{c.n, c.m};
  const MatrixF w = random_matrix(c.rows, c.cols, 7 + c.m);
  const MatrixF once = prune(w, p, PruneAxis::kRows);
  EXPECT_EQ(prune(once, p, PruneAxis::kRows).data, once.data);
  const MatrixF col_once = prune(w, p, PruneAxis::kColumns);
  EXPECT_EQ(prune(col_once, p, PruneAxis::kColumns).data, col_once.data);
  EXPECT_TRUE(is_nm_sparse(col_once, p, PruneAxis::kColumns));
}

TEST_P(NmPruneProperties, DoublePrunedIsNmAlongRowsAndColumns) {
  const Case c = GetParam();
  const NmPattern p{c.n, c.m};
  const MatrixF w = random_matrix(c.rows, c.cols, 99 + c.n);
  const DoublePruned d = double_prune(w, p);
  EXPECT_TRUE(is_nm_sparse(d.w_r, p, PruneAxis::kRows));
  EXPECT_TRUE(is_nm_sparse(d.w_rc, p, PruneAxis::kRows));
  EXPECT_TRUE(is_nm_sparse(d.w_rc, p, PruneAxis::kColumns));
  // W^{R,C} keeps a subset of W^R, and on that subset the values are W's own.
  for (int64_t i = 0; i < w.size(); ++i) {
    if (d.mask_rc.data[i]) {
      ASSERT_TRUE(d.mask_r.data[i]);
      ASSERT_EQ(d.w_rc.data[i], w.data[i]);
    } else {
      ASSERT_EQ(d.w_rc.data[i], 0.0f);
    }
  }
  // Column pruning of W^R keeps its N largest per column group.
  EXPECT_EQ(d.w_rc.data, prune(d.w_r, p, PruneAxis::kColumns).data);
}

INSTANTIATE_TEST_SUITE_P(Patterns, NmPruneProperties,
                         ::testing::Values(Case{2, 4, 48, 36}, Case{2, 4, 4, 4}, Case{2, 8, 40, 24},
                                           Case{1, 4, 12, 20}, Case{3, 4, 8, 12}, Case{4, 16, 32, 48},
                                           Case{16, 16, 16, 16}, Case{1, 1, 3, 5}));

TEST(NmPrune, TiesBreakTowardsLowerIndex) {
  MatrixF w(1, 4);
  w.data = {0.5f, -0.5f, 0.5f, 0.25f};
  const Mask mask = nm_mask(w, {2, 4}, PruneAxis::kRows);
  EXPECT_EQ(mask.data, (std::vector<uint8_t>{1, 1, 0, 0}));
  MatrixF zeros(1, 4, 0.0f);
  EXPECT_EQ(nm_mask(zeros, {2, 4}, PruneAxis::kRows).data, (std::vector<uint8_t>{1, 1, 0, 0}));
}

TEST(NmPrune, NanOutranksNumbers) {
  MatrixF w(1, 4);
  w.data = {1.0f, NAN, 3.0f, 2.0f};
  EXPECT_EQ(nm_mask(w, {2, 4}, PruneAxis::kRows).data, (std::vector<uint8_t>{0, 1, 1, 0}));
}

TEST(NmPrune, ColumnGroupsRunDownColumns) {
  MatrixF w(4, 2);
  w.data = {1, 8, 4, 7, 3, 6, 2, 5};  // column 0: 1 4 3 2 ; column 1: 8 7 6 5
  const Mask mask = nm_mask(w, {2, 4}, PruneAxis::kColumns);
  EXPECT_EQ(mask.data, (std::vector<uint8_t>{0, 1, 1, 1, 1, 0, 0, 0}));
}

TEST(NmPrune, RejectsBadPatternsAndShapes) {
  const MatrixF w = random_matrix(8, 8, 3);
  EXPECT_THROW(nm_mask(w, {5, 4}, PruneAxis::kRows), Error);   // N > M
  EXPECT_THROW(nm_mask(w, {2, 17}, PruneAxis::kRows), Error);  // M > 16
  EXPECT_THROW(nm_mask(w, {0, 4}, PruneAxis::kRows), Error);
  const MatrixF odd = random_matrix(8, 10, 3);
  EXPECT_THROW(nm_mask(odd, {2, 4}, PruneAxis::kRows), Error);
  EXPECT_NO_THROW(nm_mask(odd, {2, 4}, PruneAxis::kColumns));
  try {
    nm_mask(odd, {2, 4}, PruneAxis::kRows);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("divisible"), std::string::npos);
  }
}

TEST(NmPrune, DoublePruningDropsAboutAFifthOfTheRowPrunedWeightsFor2To4) {
  // Random W^R keeps 2 of 4 per row; column 2:4 pruning of it removes a column group's
  // surplus only. For i.i.d. masks the expected kept fraction of W^R is E[min(X,2)]/2 with
  // X ~ Binomial(4, 1/2): (0*1 + 1*4 + 2*11)/16/2 = 0.8125.
  const MatrixF w = random_matrix(512, 512, 11);
  const DoublePruned d = double_prune(w, {2, 4});
  double kept_r = 0, kept_rc = 0;
  for (size_t i = 0; i < w.data.size(); ++i) {
    kept_r += d.mask_r.data[i];
    kept_rc += d.mask_rc.data[i];
  }
  EXPECT_NEAR(kept_rc / kept_r, 0.8125, 0.01);
}

}  // namespace
}  // namespace slope
