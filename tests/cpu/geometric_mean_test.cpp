#include "slope/core/geometric_mean.hpp"

#include <gtest/gtest.h>

namespace slope {
namespace {

TEST(GeometricMean, OfRatiosAndTheirMinimum) {
  GeometricMean g;
  EXPECT_TRUE(g.empty());
  for (double r : {2.0, 0.5, 4.0, 1.25}) g.add(r);
  EXPECT_EQ(g.count(), 4);
  EXPECT_NEAR(g.value(), std::pow(2.0 * 0.5 * 4.0 * 1.25, 0.25), 1e-12);
  EXPECT_DOUBLE_EQ(g.min(), 0.5);
}

TEST(GeometricMean, OfOneRatioIsThatRatio) {
  GeometricMean g;
  g.add(0.75);
  EXPECT_NEAR(g.value(), 0.75, 1e-15);
  EXPECT_DOUBLE_EQ(g.min(), 0.75);
}

TEST(GeometricMean, RefusesRatiosThatAreNotPositiveAndFinite) {
  GeometricMean g;
  EXPECT_THROW(g.add(0.0), Error);
  EXPECT_THROW(g.add(-1.0), Error);
  EXPECT_THROW(g.add(std::numeric_limits<double>::infinity()), Error);
  EXPECT_THROW(g.add(std::nan("")), Error);
  EXPECT_TRUE(g.empty());
}

}  // namespace
}  // namespace slope
