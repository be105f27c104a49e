// Reference N:M compressed layout: per row, the kept values in order, plus for each kept
// value its position (0..M-1) inside its group. cuSPARSELt's fp16/bf16 buffer begins with
// the same values in the same row-major order (its metadata, undocumented, is laid out as
// sparselt_metadata.hpp describes); the GPU tests check both claims.
#pragma once

#include <cstdint>
#include <vector>

#include "slope/core/matrix.hpp"
#include "slope/core/nm_prune.hpp"

namespace slope {

struct CompressedNm {
  int64_t rows = 0;
  int64_t cols = 0;  // dense columns
  NmPattern pattern;
  std::vector<float> values;     // rows x (cols / M * N), row-major
  std::vector<uint8_t> indices;  // same length: position of each value inside its group

  int64_t kept_per_row() const { return cols / pattern.m * pattern.n; }
};

// Compresses a matrix that is N:M sparse along its rows. In a group with fewer than N
// nonzeros the slots are filled with the group's lowest-index zeros, so the kept positions
// are exactly nm_mask's. Throws kInvalidInput if `w` is not N:M sparse along rows.
CompressedNm compress(const MatrixF& w, NmPattern pattern);

// Compresses with an explicit mask that keeps exactly N per row group.
CompressedNm compress_with_mask(const MatrixF& w, const Mask& mask, NmPattern pattern);

MatrixF decompress(const CompressedNm& c);

// Bytes cuSPARSELt needs for a compressed fp16/bf16 operand of 2:4 sparsity: half the values
// plus 1/16 of the dense bytes of metadata, i.e. 9/16 of the dense bytes.
int64_t compressed_2to4_bytes(int64_t rows, int64_t cols, int64_t element_bytes);

}  // namespace slope
