// AdamW (decoupled weight decay, bias correction, global-norm clipping) on the CPU: the
// hyperparameters both implementations share and the reference every GPU update is tested
// against. Parameters are 16-bit (fp16/bf16) with fp32 moments; an update is computed in
// fp32 and rounded once to the parameter's type, as the GPU kernel does.
#pragma once

#include <cstdint>
#include <vector>

#include "slope/core/dtype.hpp"

namespace slope {

struct AdamWConfig {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.01f;  // decoupled: p *= 1 - lr * weight_decay (tensors that decay)
  float max_grad_norm = 1.0f;  // global L2 norm clipping; <= 0 switches it off
};

// Throws kInvalidInput naming the first out-of-range hyperparameter.
void validate(const AdamWConfig& config);

// The factor every gradient is multiplied by: grad_scale, times max_norm / norm when the
// norm of the scaled gradients exceeds max_norm (norm: of the scaled gradients).
float clip_coefficient(double scaled_norm, float max_grad_norm);

// Bias-correction terms of step `step` (1-based): step size lr / (1 - beta1^t) and
// sqrt(1 - beta2^t).
struct AdamWStepTerms {
  float step_size;
  float bias2_sqrt;
};
AdamWStepTerms adamw_step_terms(const AdamWConfig& config, int64_t step);

// One AdamW update in place. `grad_coef` multiplies the gradient (scale and clipping);
// `decay` applies weight decay. Parameters are rounded to `dtype` after the update.
void adamw_update_reference(std::vector<float>& param, const std::vector<float>& grad, std::vector<float>& m,
                            std::vector<float>& v, const AdamWConfig& config, int64_t step, float grad_coef,
                            bool decay, DType dtype);

}  // namespace slope
