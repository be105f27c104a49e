// Host wall-clock time, for what the host itself spends (plan setup, searches), as opposed to
// the device time that slope/bench/timer.hpp measures with CUDA events.
#pragma once

#include <chrono>

namespace slope {

// Milliseconds of host time since `start` (a steady_clock reading: it never jumps).
inline double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace slope
