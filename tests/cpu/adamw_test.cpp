#include <gtest/gtest.h>

#include <cmath>

#include "slope/core/adamw.hpp"
#include "slope/core/error.hpp"

namespace slope {
namespace {

TEST(AdamWReference, FirstStepMovesEachParameterByLrAgainstItsGradientSign) {
  // Step 1 with bias correction: m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + eps).
  AdamWConfig c;
  c.lr = 0.01f;
  c.weight_decay = 0.0f;
  std::vector<float> p = {1.0f, -2.0f, 0.5f}, g = {0.3f, -4.0f, 1e-3f}, m(3), v(3);
  adamw_update_reference(p, g, m, v, c, 1, 1.0f, true, DType::kF32);
  EXPECT_NEAR(p[0], 0.99f, 1e-6);
  EXPECT_NEAR(p[1], -1.99f, 1e-6);
  EXPECT_NEAR(p[2], 0.49f, 1e-5);
  EXPECT_NEAR(m[1], 0.1f * -4.0f, 1e-6);
  EXPECT_NEAR(v[1], 0.001f * 16.0f, 1e-6);
}

TEST(AdamWReference, DecayIsDecoupledAndOnlyWhereAsked) {
  AdamWConfig c;
  c.lr = 0.1f;
  c.weight_decay = 0.5f;
  std::vector<float> p = {2.0f}, g = {1.0f}, m(1), v(1);
  std::vector<float> q = p, mq(1), vq(1);
  adamw_update_reference(p, g, m, v, c, 1, 1.0f, true, DType::kF32);
  adamw_update_reference(q, g, mq, vq, c, 1, 1.0f, false, DType::kF32);
  EXPECT_NEAR(p[0], 2.0f * (1 - 0.05f) - 0.1f, 1e-5);
  EXPECT_NEAR(q[0], 2.0f - 0.1f, 1e-5);
}

TEST(AdamWReference, ClipCoefficientScalesTheNormDownToTheMaximum) {
  EXPECT_FLOAT_EQ(clip_coefficient(0.5, 1.0f), 1.0f);
  EXPECT_NEAR(clip_coefficient(4.0, 1.0f), 0.25f, 1e-6);
  EXPECT_FLOAT_EQ(clip_coefficient(100.0, 0.0f), 1.0f);  // off
}

TEST(AdamWReference, BiasCorrectionTermsFollowTheStep) {
  AdamWConfig c;
  c.lr = 1.0f;
  const AdamWStepTerms t1 = adamw_step_terms(c, 1), t10 = adamw_step_terms(c, 10);
  EXPECT_NEAR(t1.step_size, 1.0 / 0.1, 1e-4);
  EXPECT_NEAR(t1.bias2_sqrt, std::sqrt(0.001), 1e-6);
  EXPECT_NEAR(t10.step_size, 1.0 / (1 - std::pow(0.9, 10)), 1e-4);
  EXPECT_THROW(adamw_step_terms(c, 0), Error);
}

TEST(AdamWReference, ParametersAreRoundedToTheirType) {
  AdamWConfig c;
  c.lr = 1e-4f;
  c.weight_decay = 0.0f;
  std::vector<float> p = {1.0f}, g = {1.0f}, m(1), v(1);
  adamw_update_reference(p, g, m, v, c, 1, 1.0f, false, DType::kF16);
  // 1 - 1e-4 is not an fp16 number (the spacing below 1 is 2^-11): the result is rounded.
  EXPECT_EQ(p[0], round_to(DType::kF16, 1.0f - 1e-4f));
  EXPECT_NE(p[0], 1.0f - 1e-4f);
}

TEST(AdamWReference, BadHyperparametersAreRejected) {
  AdamWConfig c;
  c.beta1 = 1.0f;
  EXPECT_THROW(validate(c), Error);
  c = AdamWConfig{};
  c.eps = 0.0f;
  EXPECT_THROW(validate(c), Error);
  c = AdamWConfig{};
  c.lr = NAN;
  EXPECT_THROW(validate(c), Error);
}

}  // namespace
}  // namespace slope
