// Reading W's 2:4 positions on the device from either source (slope/gpu/positions.hpp).
#pragma once

#include "slope/core/sparselt_metadata.hpp"
#include "slope/gpu/positions.hpp"

namespace slope::gpu {

// slope's index byte for groups 2 pair and 2 pair + 1 of row `row` (cols columns): low half
// the first group's code, high half the second's.
__device__ __forceinline__ uint8_t position_byte(const Positions2to4& p, int64_t row, int64_t pair, int64_t cols) {
  if (!p.sparselt_metadata) return p.data[row * (cols / 8) + pair];
  // Group 2 pair + 1 sits 4 codes (2 bytes) after group 2 pair, in the same half of its byte.
  const int64_t i = sparselt_metadata_code_index(row, 2 * pair, cols);
  const int shift = 4 * static_cast<int>(i % 2);
  return static_cast<uint8_t>(((p.data[i / 2] >> shift) & 0xF) | (((p.data[i / 2 + 2] >> shift) & 0xF) << 4));
}

// The same byte by its index in slope's row-major order (row * cols / 8 + pair), as the
// one-thread-per-byte kernels count. Only slope's own bytes are read by that index directly;
// the metadata's order needs the row and pair, so a layer whose positions stay in the
// metadata (the H200's training layers) still pays one division per byte here.
__device__ __forceinline__ uint8_t position_byte_at(const Positions2to4& p, int64_t byte, int64_t cols) {
  if (!p.sparselt_metadata) return p.data[byte];
  const int64_t per_row = cols / 8;
  return position_byte(p, byte / per_row, byte % per_row, cols);
}

}  // namespace slope::gpu
