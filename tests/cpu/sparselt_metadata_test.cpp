// The layout of cuSPARSELt's metadata as slope measured it (core/sparselt_metadata.hpp). The
// GPU tests check it against cuSPARSELt itself; these check the CPU side's arithmetic.
#include "slope/core/sparselt_metadata.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <vector>

#include "slope/core/error.hpp"

namespace slope {
namespace {

// Code positions read off cuSPARSELt 0.8.0's buffers on the H200 (probe at 59aa6e5).
TEST(SparseLtMetadata, MeasuredCodePositions) {
  EXPECT_EQ(sparselt_metadata_code_index(0, 0, 64), 0);
  EXPECT_EQ(sparselt_metadata_code_index(8, 0, 64), 1);   // row + 8: the high half of byte 0
  EXPECT_EQ(sparselt_metadata_code_index(0, 4, 64), 2);   // the second half of a tile's width
  EXPECT_EQ(sparselt_metadata_code_index(0, 1, 64), 4);
  EXPECT_EQ(sparselt_metadata_code_index(1, 0, 64), 16);
  EXPECT_EQ(sparselt_metadata_code_index(15, 7, 64), 127);
  EXPECT_EQ(sparselt_metadata_code_index(16, 0, 64), 128);  // the next block of 16 rows
  EXPECT_EQ(sparselt_metadata_code_index(24, 0, 64), 129);
  EXPECT_EQ(sparselt_metadata_code_index(0, 8, 64), 512);   // the next tile along the row
  EXPECT_EQ(sparselt_metadata_code_index(64, 0, 64), 1024);  // tiles in row-major order
  EXPECT_EQ(sparselt_metadata_code_index(64, 0, 208), 7 * 512);  // 208 columns: 7 tiles wide
}

TEST(SparseLtMetadata, EveryGroupHasItsOwnCodeInsideTheMetadata) {
  for (const auto& [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{
           {16, 16}, {64, 64}, {80, 208}, {48, 1024}, {1024, 48}, {192, 96}}) {
    std::set<int64_t> seen;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < cols / 4; ++g) {
        const int64_t i = sparselt_metadata_code_index(r, g, cols);
        EXPECT_GE(i, 0);
        EXPECT_LT(i, 2 * sparselt_metadata_bytes(rows, cols)) << rows << " x " << cols;
        EXPECT_TRUE(seen.insert(i).second) << "two groups share code " << i << " in " << rows << " x " << cols;
      }
  }
  // Whole tiles: 80 x 208 pads to 128 x 224, as cuSPARSELt's buffer size showed (20224 bytes).
  EXPECT_EQ(sparselt_metadata_offset(80, 208, 2) + sparselt_metadata_bytes(80, 208), 20224);
  EXPECT_EQ(sparselt_metadata_bytes(4096, 1024), 4096 * 1024 / 8);
}

TEST(SparseLtMetadata, DecodesSlopeIndexBytesFromRandomPositions) {
  const int64_t rows = 80, cols = 208;
  std::mt19937 rng(7);
  std::vector<uint8_t> metadata(static_cast<size_t>(sparselt_metadata_bytes(rows, cols)), 0xEE);
  std::vector<uint8_t> want(static_cast<size_t>(rows * cols / 8), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < cols / 4; ++g) {
      const int lo = static_cast<int>(rng() % 3), hi = lo + 1 + static_cast<int>(rng() % (3 - lo));
      const uint8_t code = static_cast<uint8_t>(lo | hi << 2);
      const int64_t i = sparselt_metadata_code_index(r, g, cols);
      uint8_t& byte = metadata[static_cast<size_t>(i / 2)];
      byte = static_cast<uint8_t>((byte & (i % 2 ? 0x0F : 0xF0)) | code << (4 * (i % 2)));
      want[static_cast<size_t>((r * cols / 4 + g) / 2)] |= static_cast<uint8_t>(code << (4 * (g % 2)));
    }
  EXPECT_EQ(positions_from_sparselt_metadata(metadata.data(), rows, cols), want);
}

TEST(SparseLtMetadata, RejectsColumnsOffGroupPairs) {
  const std::vector<uint8_t> metadata(4096, 0);
  EXPECT_THROW(positions_from_sparselt_metadata(metadata.data(), 16, 12), Error);
  EXPECT_THROW(positions_from_sparselt_metadata(metadata.data(), 0, 16), Error);
}

}  // namespace
}  // namespace slope
