#include <gtest/gtest.h>

#include <cmath>

#include "slope/core/random.hpp"
#include "slope/core/reference.hpp"

namespace slope {
namespace {

TEST(Reference, MatmulNtHandComputed) {
  MatrixF x(2, 3), w(2, 3);
  x.data = {1, 2, 3, 4, 5, 6};
  w.data = {1, 0, -1, 2, 1, 0};
  const MatrixF y = matmul_nt(x, w);
  EXPECT_EQ(y.data, (std::vector<float>{-2, 4, -2, 13}));
}

TEST(Reference, LinearWithBias) {
  MatrixF x(1, 2), w(3, 2);
  x.data = {1, 2};
  w.data = {1, 1, 0, 1, 2, 0};
  const std::vector<float> b = {0.5f, -1.0f, 0.0f};
  EXPECT_EQ(linear_forward(x, w, &b).data, (std::vector<float>{3.5f, 1.0f, 2.0f}));
}

TEST(Reference, GradientsMatchFiniteDifferences) {
  // Loss = sum(G .* Y) with Y = X W^T: dL/dW = G^T X, dL/dX = G W.
  const MatrixF x = random_matrix(5, 8, 1), w = random_matrix(6, 8, 2), g = random_matrix(5, 6, 3);
  auto loss = [&](const MatrixF& xx, const MatrixF& ww) {
    const MatrixF y = matmul_nt(xx, ww);
    double s = 0;
    for (int64_t i = 0; i < y.size(); ++i) s += static_cast<double>(y.data[i]) * g.data[i];
    return s;
  };
  const MatrixF dw = linear_grad_weight(g, x), dx = linear_grad_input(g, w);
  const float h = 1e-2f;
  for (int64_t i : {0, 7, 20, 47}) {
    MatrixF wp = w, wm = w;
    wp.data[i] += h;
    wm.data[i] -= h;
    EXPECT_NEAR((loss(x, wp) - loss(x, wm)) / (2 * h), dw.data[i], 1e-3);
    MatrixF xp = x, xm = x;
    xp.data[i % x.size()] += h;
    xm.data[i % x.size()] -= h;
    EXPECT_NEAR((loss(xp, w) - loss(xm, w)) / (2 * h), dx.data[i % x.size()], 1e-3);
  }
  const auto db = linear_grad_bias(g);
  double col0 = 0;
  for (int64_t r = 0; r < g.rows; ++r) col0 += g(r, 0);
  EXPECT_NEAR(db[0], col0, 1e-6);
}

TEST(Reference, CompareReportsWorstElements) {
  MatrixF a(2, 2, 1.0f), b(2, 2, 1.0f);
  a(1, 0) = 2.0f;
  const Comparison c = compare(a, b, 1e-3, 1e-3);
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.worst.find("(1, 0)"), std::string::npos);
  EXPECT_TRUE(compare(b, b, 0, 0).ok);
  EXPECT_DOUBLE_EQ(relative_error(b, b), 0.0);
  MatrixF n(2, 2, 1.0f);
  n(0, 0) = NAN;
  EXPECT_FALSE(compare(n, b, 1, 1).ok);
}

}  // namespace
}  // namespace slope
