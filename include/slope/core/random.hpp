// Reproducible random test data, already rounded to the storage dtype so that the CPU
// reference and the GPU see the very same numbers.
#pragma once

#include <cstdint>

#include "slope/core/dtype.hpp"
#include "slope/core/matrix.hpp"

namespace slope {

// Uniform in [-scale, scale), rounded to `dtype`. Never all zeros for a non-empty matrix.
MatrixF random_matrix(int64_t rows, int64_t cols, uint64_t seed, DType dtype = DType::kF32,
                      float scale = 1.0f);

}  // namespace slope
