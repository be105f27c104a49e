#include <random>

#include "slope/core/matrix.hpp"
#include "slope/core/random.hpp"

namespace slope {

MatrixF transpose(const MatrixF& m) {
  MatrixF t(m.cols, m.rows);
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t c = 0; c < m.cols; ++c) t(c, r) = m(r, c);
  return t;
}

MatrixF random_matrix(int64_t rows, int64_t cols, uint64_t seed, DType dtype, float scale) {
  MatrixF m(rows, cols);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  for (auto& v : m.data) v = round_to(dtype, dist(rng));
  return m;
}

}  // namespace slope
