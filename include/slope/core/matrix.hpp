// A dense row-major host matrix: the currency of every CPU reference.
#pragma once

#include <cstdint>
#include <vector>

#include "slope/core/error.hpp"

namespace slope {

template <typename T>
struct Matrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<T> data;

  Matrix() = default;
  Matrix(int64_t r, int64_t c, T fill = T{}) : rows(r), cols(c), data(checked_size(r, c), fill) {}

  T& operator()(int64_t r, int64_t c) { return data[static_cast<size_t>(r * cols + c)]; }
  const T& operator()(int64_t r, int64_t c) const { return data[static_cast<size_t>(r * cols + c)]; }
  int64_t size() const { return rows * cols; }

 private:
  static size_t checked_size(int64_t r, int64_t c) {
    require(r >= 0 && c >= 0, "matrix dimensions must be non-negative");
    return static_cast<size_t>(r * c);
  }
};

using MatrixF = Matrix<float>;
using Mask = Matrix<uint8_t>;  // 1 = kept, 0 = pruned

MatrixF transpose(const MatrixF& m);

}  // namespace slope
