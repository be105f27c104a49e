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

TEST(SlopeReference, NewKeptValuesMoveWAndFollowTheFixedColumnMaskUntilItChanges) {
  SlopeLayerReference layer(random_matrix(16, 16, 4), {});
  const Mask mask_r = layer.weights().mask_r, mask_rc = layer.weights().mask_rc;
  std::vector<float> kept = layer.kept_values();
  ASSERT_EQ(kept.size(), 128u);
  for (size_t i = 0; i < kept.size(); ++i) kept[i] = static_cast<float>(i % 7) - 3.0f + 0.25f;
  layer.set_kept_values(kept);
  EXPECT_EQ(layer.kept_values(), kept);
  EXPECT_EQ(layer.weights().mask_r.data, mask_r.data);    // W's mask never changes
  EXPECT_EQ(layer.weights().mask_rc.data, mask_rc.data);  // nor W^{R,C}'s, until asked
  EXPECT_EQ(layer.weights().w_rc.data, apply_mask(layer.weights().w_r, mask_rc).data);
  layer.change_column_mask();
  const Mask want = column_mask_within(layer.weights().w_r, mask_r, {2, 4});
  EXPECT_EQ(layer.weights().mask_rc.data, want.data);
  EXPECT_NE(want.data, mask_rc.data);  // these values pick other columns' survivors
  EXPECT_TRUE(is_nm_sparse(layer.weights().w_rc, {2, 4}, PruneAxis::kColumns));
}

TEST(SlopeReference, AdapterAddsXLRAndItsGradientsAreTheChainRule) {
  const MatrixF w = random_matrix(16, 32, 5), x = random_matrix(8, 32, 6), dy = random_matrix(8, 16, 7);
  const MatrixF lt = random_matrix(4, 32, 8), r = random_matrix(4, 16, 9);
  SlopeLayerReference plain(w, {}), layer(w, {});
  layer.enable_adapter(lt, r);
  const MatrixF lt_pruned = prune(lt, {2, 4}, PruneAxis::kRows);
  EXPECT_EQ(layer.adapter_lt().data, lt_pruned.data);
  const MatrixF h = matmul_nt(x, lt_pruned);  // X L
  const MatrixF hr = matmul_nn(h, r);
  const MatrixF y0 = plain.forward(x), y = layer.forward(x);
  for (size_t i = 0; i < y.data.size(); ++i) EXPECT_NEAR(y.data[i], y0.data[i] + hr.data[i], 1e-4);
  const MatrixF dx0 = plain.backward(x, dy, false), dx = layer.backward(x, dy, false);
  const MatrixF dh = matmul_nt(dy, r);  // dY R^T
  const MatrixF dx_adapter = matmul_nn(dh, lt_pruned);
  for (size_t i = 0; i < dx.data.size(); ++i) EXPECT_NEAR(dx.data[i], dx0.data[i] + dx_adapter.data[i], 1e-4);
  const MatrixF dr = matmul_tn(h, dy), dlt = matmul_tn(dh, x);
  for (size_t i = 0; i < dr.data.size(); ++i) EXPECT_NEAR(layer.adapter_r_grad().data[i], dr.data[i], 1e-4);
  for (size_t i = 0; i < dlt.data.size(); ++i)
    EXPECT_NEAR(layer.adapter_lt_grad().data[i], lt_pruned.data[i] == 0.0f ? 0.0f : dlt.data[i], 1e-4);
}

}  // namespace
}  // namespace slope
