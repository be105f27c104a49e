// Where a kernel finds W's 2:4 positions (which two of each group of four are kept).
#pragma once

#include <cstdint>

#include "slope/core/sparselt_metadata.hpp"

namespace slope::gpu {

// Either slope's own index bytes (prune_rows_2to4's format: rows * cols / 8 bytes, byte j of a
// row holding groups 2j and 2j + 1), or the metadata of W's cuSPARSELt-compressed buffer,
// which holds the same codes in another order (core/sparselt_metadata.hpp); the kernels read
// either in place, so a layer whose metadata holds its positions stores no copy.
struct Positions2to4 {
  const uint8_t* data = nullptr;
  bool sparselt_metadata = false;

  Positions2to4() = default;
  // Implicit on purpose: slope's own index bytes are the common case (and every test's).
  Positions2to4(const uint8_t* own_indices) : data(own_indices) {}  // NOLINT(google-explicit-constructor)
  // The metadata of a rows x cols 16-bit matrix compressed by cuSPARSELt into `compressed`.
  static Positions2to4 in_compressed(const void* compressed, int64_t rows, int64_t cols) {
    Positions2to4 p;
    p.data = static_cast<const uint8_t*>(compressed) + sparselt_metadata_offset(rows, cols, 2);
    p.sparselt_metadata = true;
    return p;
  }
};

}  // namespace slope::gpu
