#include <gtest/gtest.h>

#include "slope/core/random.hpp"
#include "slope/core/reference.hpp"
#include "slope/core/slope_reference.hpp"

namespace slope {
namespace {

TEST(SlopeReference, GradientsAreTheDenseOnesOnTheMasks) {
  const MatrixF w = random_matrix(8, 16, 1), x = random_matrix(4, 16, 2), dy = random_matrix(4, 8, 3);
  SlopeLayerReference layer(w, std::vector<float>(8, 0.5f));
  const DoublePruned& p = layer.weights();
  // Forward uses W^R, input gradient W^{R,C}.
  const std::vector<float> b(8, 0.5f);
  EXPECT_EQ(layer.forward(x).data, linear_forward(x, p.w_r, &b).data);
  const MatrixF dx = layer.backward(x, dy, false);
  EXPECT_EQ(dx.data, linear_grad_input(dy, p.w_rc).data);
  // Kept gradient: dW at W's kept positions, row-major.
  const MatrixF dw = linear_grad_weight(dy, x);
  std::vector<float> want;
  for (int64_t i = 0; i < dw.size(); ++i)
    if (p.mask_r.data[i]) want.push_back(dw.data[i]);
  EXPECT_EQ(layer.kept_grad(), want);
  // Accumulation doubles it.
  layer.backward(x, dy, true);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_FLOAT_EQ(layer.kept_grad()[i], 2 * want[i]);
  EXPECT_FLOAT_EQ(layer.bias_grad()[0], 2 * linear_grad_bias(dy)[0]);
}

}  // namespace
}  // namespace slope
