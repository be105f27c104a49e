// Kernels that keep SLoPe's two compressed weights in step with W's kept values without a
// dense round trip (see SlopeLinear):
//
//  - W's kept values live in W's compressed buffer (AdamW updates them in place); W's 2:4
//    positions are read from W's metadata there, or from slope's own indices (positions.hpp).
//  - W^{R,C}'s column mask is stored as one flag bit per kept value of W: "this value is also
//    kept by the column pruning". Bit q is kept value q in W's compressed order (row-major),
//    byte q / 8, bit q % 8. rows * cols / 16 bytes.
//  - T = (W^{R,C})^T is row-wise 2:4. In each of its groups (a column of W, rows 4g..4g+3)
//    the kept slots are the flagged ones, filled up to two with the lowest-index unflagged
//    positions (which hold zeros). A probe matrix with ones exactly there, compressed by
//    cuSPARSELt, gives T metadata that matches these slots; refresh_transpose_values then
//    writes T's values half directly.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "slope/core/dtype.hpp"
#include "slope/gpu/positions.hpp"

namespace slope::gpu {

// Where T's compressed values live: T's rows in `count` consecutive parts (square tiles, or
// one part), part p holding rows [p * rows_per_part, (p + 1) * rows_per_part).
struct TransposeParts {
  static constexpr int kMax = 16;
  void* values[kMax] = {};
  int64_t rows_per_part = 0;
  int count = 0;
};

// Recomputes the column-mask flags from W's current kept values: the column 2:4 mask of W^R
// (nm_mask's rule, zeros included) restricted to W's own mask (slope::column_mask_within).
void column_mask_flags(const void* w_kept, Positions2to4 w_positions, uint8_t* flags, int64_t rows, int64_t cols,
                       DType dtype, cudaStream_t stream);

// Dense T (cols x rows, row-major). With `w_kept`: T = (W^{R,C})^T (values on flagged slots,
// zeros elsewhere). With w_kept == nullptr: the probe, ones on T's kept slots.
void transpose_from_kept(const void* w_kept, Positions2to4 w_positions, const uint8_t* flags, void* t_dense,
                         int64_t rows, int64_t cols, DType dtype, cudaStream_t stream);

// Writes T's compressed values (the first half of each part's cuSPARSELt buffer) from W's
// kept values: a memory-bound pass, no compression.
void refresh_transpose_values(const void* w_kept, Positions2to4 w_positions, const uint8_t* flags,
                              const TransposeParts& parts, int64_t rows, int64_t cols, DType dtype,
                              cudaStream_t stream);

// Dense W^R (rows x cols) from its kept values and positions; with kept == nullptr, ones on the
// kept positions (a probe whose compression carries exactly these positions).
void scatter_kept_2to4(const void* kept, Positions2to4 positions, void* dense, int64_t rows, int64_t cols,
                       DType dtype, cudaStream_t stream);

}  // namespace slope::gpu
