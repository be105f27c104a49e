// Where cuSPARSELt keeps W's 2:4 positions in a compressed 16-bit matrix.
//
// cuSPARSELt calls its compressed layout private; slope measured it (H200, cuSPARSELt 0.8.0,
// W m x k row-major compressed through a standalone descriptor, as training layers compress
// it; docs/gpu-engine.md, "cuSPARSELt's metadata"). After the kept values (m * k / 2 of
// them) comes one 4-bit code per group of four columns: the lower kept position in bits 0-1,
// the higher in bits 2-3, the code of slope's own index bytes (prune_rows_2to4). The codes lie
// in tiles of 64 rows x 32 columns (8 groups), the tiles in row-major order over the matrix,
// rows and columns padded up to whole tiles (padding codes read 14, positions 2 and 3). A
// tile is four blocks of 16 rows, 64 bytes each; in a block, byte (r % 8) * 8 + (g % 4) * 2 +
// g / 4 holds group g of row r % 8 in its low half and of row r % 8 + 8 in its high half.
//
// Nothing documents this, so a layer relies on it only after checking it on the GPU and
// cuSPARSELt it runs on (gpu/compressed_layout.hpp), and keeps its own positions otherwise.
#pragma once

#include <cstdint>
#include <vector>

namespace slope {

// Index of the 4-bit code of group `group` (columns 4 group .. 4 group + 3) of row `row` in
// the metadata of a matrix of `cols` columns: in byte index / 2, in its high half when the
// index is odd. constexpr so that device code can use it too.
constexpr int64_t sparselt_metadata_code_index(int64_t row, int64_t group, int64_t cols) {
  const int64_t tiles_per_row = (cols + 31) / 32;
  const int64_t tile = (row / 64) * tiles_per_row + group / 8;
  const int64_t r = row % 64, g = group % 8;
  return tile * 512 + (r / 16) * 128 + (r % 8) * 16 + (g % 4) * 4 + (g / 4) * 2 + (r % 16) / 8;
}

// Bytes of the metadata of a rows x cols matrix (whole tiles).
constexpr int64_t sparselt_metadata_bytes(int64_t rows, int64_t cols) {
  return (rows + 63) / 64 * ((cols + 31) / 32) * 256;
}

// Byte offset of the metadata in the compressed buffer: the kept values come first.
constexpr int64_t sparselt_metadata_offset(int64_t rows, int64_t cols, int64_t element_bytes) {
  return rows * cols / 2 * element_bytes;
}

// CPU reference of the device reader (src/gpu/positions.cuh): slope's index bytes for a
// rows x cols matrix (rows * cols / 8 bytes; byte j of a row holds groups 2j and 2j + 1, the
// first in its low half) read from `metadata` (sparselt_metadata_bytes(rows, cols) bytes).
// cols must be a multiple of 8.
std::vector<uint8_t> positions_from_sparselt_metadata(const uint8_t* metadata, int64_t rows, int64_t cols);

}  // namespace slope
