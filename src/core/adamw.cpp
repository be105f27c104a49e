#include "slope/core/adamw.hpp"

#include <cmath>
#include <string>

#include "slope/core/error.hpp"

namespace slope {

void validate(const AdamWConfig& c) {
  require(std::isfinite(c.lr) && c.lr >= 0.0f, "AdamW: the learning rate must be finite and >= 0");
  require(c.beta1 >= 0.0f && c.beta1 < 1.0f, "AdamW: beta1 must be in [0, 1)");
  require(c.beta2 >= 0.0f && c.beta2 < 1.0f, "AdamW: beta2 must be in [0, 1)");
  require(c.eps > 0.0f, "AdamW: eps must be > 0");
  require(c.weight_decay >= 0.0f, "AdamW: weight decay must be >= 0");
}

float clip_coefficient(double scaled_norm, float max_grad_norm) {
  if (max_grad_norm <= 0.0f || scaled_norm <= max_grad_norm) return 1.0f;
  // The small constant keeps the clipped norm just under max_norm, as in PyTorch.
  return static_cast<float>(max_grad_norm / (scaled_norm + 1e-6));
}

AdamWStepTerms adamw_step_terms(const AdamWConfig& c, int64_t step) {
  require(step >= 1, "AdamW: steps count from 1");
  const double t = static_cast<double>(step);
  const double bias1 = 1.0 - std::pow(static_cast<double>(c.beta1), t);
  const double bias2 = 1.0 - std::pow(static_cast<double>(c.beta2), t);
  return {static_cast<float>(c.lr / bias1), static_cast<float>(std::sqrt(bias2))};
}

void adamw_update_reference(std::vector<float>& param, const std::vector<float>& grad, std::vector<float>& m,
                            std::vector<float>& v, const AdamWConfig& c, int64_t step, float grad_coef, bool decay,
                            DType dtype) {
  require(grad.size() == param.size() && m.size() == param.size() && v.size() == param.size(),
          "AdamW reference: parameter, gradient and moments differ in length");
  const AdamWStepTerms terms = adamw_step_terms(c, step);
  const float keep = decay ? 1.0f - c.lr * c.weight_decay : 1.0f;
  for (size_t i = 0; i < param.size(); ++i) {
    const float g = grad[i] * grad_coef;
    m[i] = c.beta1 * m[i] + (1.0f - c.beta1) * g;
    v[i] = c.beta2 * v[i] + (1.0f - c.beta2) * g * g;
    const float denom = std::sqrt(v[i]) / terms.bias2_sqrt + c.eps;
    param[i] = round_to(dtype, param[i] * keep - terms.step_size * m[i] / denom);
  }
}

}  // namespace slope
