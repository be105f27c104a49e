// How `slope lowrank` stores the operands of (X L) R, and the cuBLASLt shapes of its two
// products T = X L and Y = T R for each way. Kept apart from the experiment so that a test
// can check every way against the CPU.
#pragma once

#include <cstdint>
#include <string>

#include "slope/core/dtype.hpp"
#include "slope/gpu/dense_gemm.hpp"

namespace slope {

// Activations (X, T, Y) token-major (X row-major t x d, as the paper's PyTorch) or
// feature-major (X^T row-major d x t, slope's layer convention); each factor stored as given
// (L: d x r, R: r x d) or transposed (L^T, R^T: the weights of two linear layers). The
// factors and the activations between slope's layers are slope's own, so it may store them
// either way.
struct LowRankLayout {
  bool feature_major = false;
  bool l_transposed = false;
  bool r_transposed = false;
};

// "feature:Lt+R" and the like.
std::string to_string(const LowRankLayout& layout);

// Column-major cuBLASLt shapes, run as DenseGemm::run(a, b, out): T = X L with (a, b) =
// (X, L) feature-major and (L, X) token-major; Y = T R with (T, R) feature-major and (R, T)
// token-major. T is t x r in the activations' layout (token-major: T row-major t x r).
gpu::GemmShape low_rank_first_shape(const LowRankLayout& layout, int64_t t, int64_t d, int64_t r, DType dtype);
gpu::GemmShape low_rank_second_shape(const LowRankLayout& layout, int64_t t, int64_t d, int64_t r, DType dtype);

}  // namespace slope
