// CPU reference math: the oracle every GPU result is checked against. Products accumulate in
// double (at least as accurate as the GPU's fp32 accumulation), results are fp32.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "slope/core/matrix.hpp"

namespace slope {

// Y = X W^T: x is t x k, w is n x k, the result t x n (the layer convention of the project).
MatrixF matmul_nt(const MatrixF& x, const MatrixF& w);
// C = A B: a is m x k, b is k x n.
MatrixF matmul_nn(const MatrixF& a, const MatrixF& b);
// C = A^T B: a is k x m, b is k x n (the weight gradient dY^T X).
MatrixF matmul_tn(const MatrixF& a, const MatrixF& b);

// Linear layer Y = X W^T + b.
MatrixF linear_forward(const MatrixF& x, const MatrixF& w, const std::vector<float>* bias);
// dX = dY W.
MatrixF linear_grad_input(const MatrixF& dy, const MatrixF& w);
// dW = dY^T X.
MatrixF linear_grad_weight(const MatrixF& dy, const MatrixF& x);
// db = column sums of dY.
std::vector<float> linear_grad_bias(const MatrixF& dy);

// Elementwise comparison |got - want| <= atol + rtol |want|. Reports the worst elements.
struct Comparison {
  bool ok = true;
  double max_abs_error = 0.0;
  double rel_fro_error = 0.0;  // ||got - want||_F / ||want||_F
  std::string worst;           // "(r, c): got g, want w" for the worst few elements
};
Comparison compare(const MatrixF& got, const MatrixF& want, double atol, double rtol);

// ||a - b||_F / ||b||_F (0 when both are zero).
double relative_error(const MatrixF& got, const MatrixF& want);

}  // namespace slope
