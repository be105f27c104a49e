#include <gtest/gtest.h>

#include "slope/core/compressed.hpp"
#include "slope/core/error.hpp"
#include "slope/core/random.hpp"

namespace slope {
namespace {

TEST(Compressed, RoundTripForSeveralPatterns) {
  for (NmPattern p : {NmPattern{2, 4}, NmPattern{2, 8}, NmPattern{1, 4}, NmPattern{4, 16}}) {
    const MatrixF w = prune(random_matrix(24, 48, 5 + p.m), p, PruneAxis::kRows);
    const CompressedNm c = compress(w, p);
    EXPECT_EQ(static_cast<int64_t>(c.values.size()), w.rows * w.cols / p.m * p.n);
    EXPECT_EQ(decompress(c).data, w.data);
  }
}

TEST(Compressed, ValuesAreTheKeptElementsInRowMajorOrder) {
  MatrixF w(2, 8, 0.0f);
  w.data = {0, 3, 0, -1, 5, 0, 6, 0,
            2, 0, 0, 4, 0, 0, 0, 0};  // last group has no nonzero at all
  const CompressedNm c = compress(w, {2, 4});
  EXPECT_EQ(c.values, (std::vector<float>{3, -1, 5, 6, 2, 4, 0, 0}));
  EXPECT_EQ(c.indices, (std::vector<uint8_t>{1, 3, 0, 2, 0, 3, 0, 1}));
  EXPECT_EQ(decompress(c).data, w.data);
}

TEST(Compressed, GroupWithOneNonzeroFillsWithFirstZero) {
  MatrixF w(1, 4, 0.0f);
  w.data = {0, 0, 0, 7};
  const CompressedNm c = compress(w, {2, 4});
  EXPECT_EQ(c.values, (std::vector<float>{0, 7}));
  EXPECT_EQ(c.indices, (std::vector<uint8_t>{0, 3}));
}

TEST(Compressed, RejectsDenseInput) {
  const MatrixF w = random_matrix(4, 8, 1);
  EXPECT_THROW(compress(w, {2, 4}), Error);
  EXPECT_THROW(compress(random_matrix(4, 6, 1), {2, 4}), Error);
}

TEST(Compressed, MaskedCompressionChecksTheMask) {
  const MatrixF w = random_matrix(4, 8, 2);
  const Mask mask = nm_mask(w, {2, 4}, PruneAxis::kRows);
  EXPECT_THROW(compress_with_mask(w, mask, {2, 4}), Error);  // nonzeros outside the mask
  const CompressedNm c = compress_with_mask(apply_mask(w, mask), mask, {2, 4});
  EXPECT_EQ(decompress(c).data, apply_mask(w, mask).data);
}

TEST(Compressed, TwoToFourBytesAreNineSixteenths) {
  EXPECT_EQ(compressed_2to4_bytes(1024, 1024, 2), 1024 * 1024 * 2 * 9 / 16);
  EXPECT_EQ(compressed_2to4_bytes(16, 32, 2), 576);
}

}  // namespace
}  // namespace slope
