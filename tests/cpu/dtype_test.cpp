#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "slope/core/dtype.hpp"
#include "slope/core/error.hpp"

namespace slope {
namespace {

TEST(DType, EveryHalfPatternRoundTripsThroughFloat) {
  for (uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const float f = half_bits_to_float(static_cast<uint16_t>(bits));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(half_bits_to_float(float_to_half_bits(f))));
      continue;
    }
    ASSERT_EQ(float_to_half_bits(f), bits) << "pattern " << bits;
  }
}

TEST(DType, HalfKnownValues) {
  EXPECT_EQ(float_to_half_bits(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half_bits(-2.0f), 0xc000);
  EXPECT_EQ(float_to_half_bits(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half_bits(65520.0f), 0x7c00);  // ties to even rounds up to inf
  EXPECT_EQ(float_to_half_bits(1e-8f), 0x0000);     // below half the smallest subnormal
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_FLOAT_EQ(half_bits_to_float(0x3555), 0.333251953125f);
}

TEST(DType, HalfRoundsToNearestEven) {
  // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1.0).
  EXPECT_EQ(float_to_half_bits(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  // 1 + 3 * 2^-11 lies halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even).
  EXPECT_EQ(float_to_half_bits(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  // Just above halfway rounds up.
  EXPECT_EQ(float_to_half_bits(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3c01);
}

TEST(DType, Bf16RoundTripAndRounding) {
  for (uint32_t bits = 0; bits < 0x10000u; bits += 7) {
    const float f = bf16_bits_to_float(static_cast<uint16_t>(bits));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_bf16_bits(f), bits);
  }
  EXPECT_EQ(float_to_bf16_bits(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16_bits(1.0f + std::ldexp(1.0f, -8)), 0x3f80);       // tie to even
  EXPECT_EQ(float_to_bf16_bits(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);   // tie to even
  EXPECT_TRUE(std::isnan(bf16_bits_to_float(float_to_bf16_bits(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(DType, RoundToIsIdempotent) {
  for (float v : {0.1f, -3.14159f, 1234.567f, 1e-6f}) {
    for (DType d : {DType::kF16, DType::kBF16}) {
      const float once = round_to(d, v);
      EXPECT_EQ(round_to(d, once), once);
      EXPECT_NEAR(once, v, std::fabs(v) * (d == DType::kF16 ? 1e-3 : 8e-3) + 1e-7);
    }
  }
}

TEST(DType, ParseNames) {
  EXPECT_EQ(parse_dtype("fp16"), DType::kF16);
  EXPECT_EQ(parse_dtype("bf16"), DType::kBF16);
  EXPECT_THROW(parse_dtype("int8"), Error);
}

}  // namespace
}  // namespace slope
