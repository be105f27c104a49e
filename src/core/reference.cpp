#include "slope/core/reference.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

namespace slope {
namespace {

void require_shape(bool ok, const char* what, const MatrixF& a, const MatrixF& b) {
  require(ok, std::string(what) + ": incompatible shapes " + std::to_string(a.rows) + "x" +
                  std::to_string(a.cols) + " and " + std::to_string(b.rows) + "x" +
                  std::to_string(b.cols));
}

}  // namespace

MatrixF matmul_nt(const MatrixF& x, const MatrixF& w) {
  require_shape(x.cols == w.cols, "matmul_nt", x, w);
  MatrixF y(x.rows, w.rows);
  for (int64_t i = 0; i < x.rows; ++i) {
    const float* xr = &x.data[static_cast<size_t>(i * x.cols)];
    for (int64_t j = 0; j < w.rows; ++j) {
      const float* wr = &w.data[static_cast<size_t>(j * w.cols)];
      double acc = 0.0;
      for (int64_t k = 0; k < x.cols; ++k) acc += static_cast<double>(xr[k]) * wr[k];
      y(i, j) = static_cast<float>(acc);
    }
  }
  return y;
}

MatrixF matmul_nn(const MatrixF& a, const MatrixF& b) {
  require_shape(a.cols == b.rows, "matmul_nn", a, b);
  return matmul_nt(a, transpose(b));
}

MatrixF matmul_tn(const MatrixF& a, const MatrixF& b) {
  require_shape(a.rows == b.rows, "matmul_tn", a, b);
  return matmul_nt(transpose(a), transpose(b));
}

MatrixF linear_forward(const MatrixF& x, const MatrixF& w, const std::vector<float>* bias) {
  MatrixF y = matmul_nt(x, w);
  if (bias) {
    require(static_cast<int64_t>(bias->size()) == w.rows, "bias length must equal W's rows");
    for (int64_t i = 0; i < y.rows; ++i)
      for (int64_t j = 0; j < y.cols; ++j) y(i, j) += (*bias)[static_cast<size_t>(j)];
  }
  return y;
}

MatrixF linear_grad_input(const MatrixF& dy, const MatrixF& w) { return matmul_nn(dy, w); }

MatrixF linear_grad_weight(const MatrixF& dy, const MatrixF& x) { return matmul_tn(dy, x); }

std::vector<float> linear_grad_bias(const MatrixF& dy) {
  std::vector<double> acc(static_cast<size_t>(dy.cols), 0.0);
  for (int64_t i = 0; i < dy.rows; ++i)
    for (int64_t j = 0; j < dy.cols; ++j) acc[static_cast<size_t>(j)] += dy(i, j);
  return {acc.begin(), acc.end()};
}

Comparison compare(const MatrixF& got, const MatrixF& want, double atol, double rtol) {
  require(got.rows == want.rows && got.cols == want.cols, "compare: shapes differ");
  Comparison result;
  struct Bad {
    double excess;
    int64_t index;
  };
  std::vector<Bad> bad;
  for (int64_t i = 0; i < got.size(); ++i) {
    const double g = got.data[static_cast<size_t>(i)];
    const double w = want.data[static_cast<size_t>(i)];
    const double err = std::fabs(g - w);
    result.max_abs_error = std::max(result.max_abs_error, std::isnan(err) ? INFINITY : err);
    const double limit = atol + rtol * std::fabs(w);
    if (!(err <= limit)) bad.push_back({std::isnan(err) ? INFINITY : err - limit, i});
  }
  result.rel_fro_error = relative_error(got, want);
  result.ok = bad.empty();
  std::sort(bad.begin(), bad.end(), [](const Bad& a, const Bad& b) { return a.excess > b.excess; });
  std::ostringstream os;
  if (!bad.empty()) os << bad.size() << " of " << got.size() << " elements out of tolerance; worst:";
  for (size_t i = 0; i < bad.size() && i < 5; ++i) {
    const int64_t r = bad[i].index / got.cols, c = bad[i].index % got.cols;
    os << " (" << r << ", " << c << "): got " << got(r, c) << ", want " << want(r, c) << ";";
  }
  result.worst = os.str();
  return result;
}

double relative_error(const MatrixF& got, const MatrixF& want) {
  require(got.rows == want.rows && got.cols == want.cols, "relative_error: shapes differ");
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < got.size(); ++i) {
    const double d = static_cast<double>(got.data[static_cast<size_t>(i)]) - want.data[static_cast<size_t>(i)];
    num += d * d;
    den += static_cast<double>(want.data[static_cast<size_t>(i)]) * want.data[static_cast<size_t>(i)];
  }
  if (den == 0.0) return num == 0.0 ? 0.0 : INFINITY;
  return std::sqrt(num / den);
}

}  // namespace slope
