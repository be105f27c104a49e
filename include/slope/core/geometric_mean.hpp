// The summary the experiments report over many shapes: the geometric mean of ratios (speedups,
// fractions of a ceiling), and the smallest of them.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "slope/core/error.hpp"

namespace slope {

class GeometricMean {
 public:
  // `ratio` must be positive: a zero or negative ratio is a measurement bug, not a data point.
  void add(double ratio) {
    require(ratio > 0.0 && std::isfinite(ratio), "a geometric mean needs positive, finite ratios");
    log_sum_ += std::log(ratio);
    min_ = std::min(min_, ratio);
    ++count_;
  }
  int count() const { return count_; }
  bool empty() const { return count_ == 0; }
  double value() const { return std::exp(log_sum_ / count_); }  // undefined when empty()
  double min() const { return min_; }

 private:
  double log_sum_ = 0.0;
  double min_ = std::numeric_limits<double>::infinity();
  int count_ = 0;
};

}  // namespace slope
