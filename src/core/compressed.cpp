#include "slope/core/compressed.hpp"

#include <string>

namespace slope {

CompressedNm compress_with_mask(const MatrixF& w, const Mask& mask, NmPattern pattern) {
  validate(pattern);
  require(w.rows == mask.rows && w.cols == mask.cols, "mask shape differs from matrix shape");
  require(w.cols % pattern.m == 0, "columns (" + std::to_string(w.cols) +
                                       ") must be divisible by M=" + std::to_string(pattern.m));
  CompressedNm c;
  c.rows = w.rows;
  c.cols = w.cols;
  c.pattern = pattern;
  c.values.reserve(static_cast<size_t>(w.rows * c.kept_per_row()));
  c.indices.reserve(c.values.capacity());
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t g = 0; g < w.cols; g += pattern.m) {
      int kept = 0;
      for (int i = 0; i < pattern.m; ++i) {
        if (!mask(r, g + i)) {
          require(w(r, g + i) == 0.0f, "matrix has a nonzero outside its mask at (" +
                                           std::to_string(r) + ", " + std::to_string(g + i) + ")");
          continue;
        }
        c.values.push_back(w(r, g + i));
        c.indices.push_back(static_cast<uint8_t>(i));
        ++kept;
      }
      require(kept == pattern.n, "mask keeps " + std::to_string(kept) + " elements in a group of row " +
                                     std::to_string(r) + ", expected " + std::to_string(pattern.n));
    }
  return c;
}

CompressedNm compress(const MatrixF& w, NmPattern pattern) {
  require(w.cols % pattern.m == 0, "columns (" + std::to_string(w.cols) +
                                       ") must be divisible by M=" + std::to_string(pattern.m));
  require(is_nm_sparse(w, pattern, PruneAxis::kRows),
          "matrix is not " + std::to_string(pattern.n) + ":" + std::to_string(pattern.m) +
              " sparse along its rows");
  // Largest magnitudes first, lowest index on ties: covers every nonzero of an N:M row group
  // and fills the rest with its first zeros.
  return compress_with_mask(w, nm_mask(w, pattern, PruneAxis::kRows), pattern);
}

MatrixF decompress(const CompressedNm& c) {
  validate(c.pattern);
  const int64_t per_row = c.kept_per_row();
  require(static_cast<int64_t>(c.values.size()) == c.rows * per_row &&
              c.indices.size() == c.values.size(),
          "compressed buffers do not match their shape");
  MatrixF w(c.rows, c.cols, 0.0f);
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t k = 0; k < per_row; ++k) {
      const size_t at = static_cast<size_t>(r * per_row + k);
      const int64_t group = k / c.pattern.n;
      const int idx = c.indices[at];
      require(idx < c.pattern.m, "compressed index out of range");
      w(r, group * c.pattern.m + idx) = c.values[at];
    }
  return w;
}

int64_t compressed_2to4_bytes(int64_t rows, int64_t cols, int64_t element_bytes) {
  const int64_t dense = rows * cols * element_bytes;
  return dense / 2 + dense / 16;
}

}  // namespace slope
