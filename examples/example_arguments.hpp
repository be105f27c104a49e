// Command-line sizes for the examples: a positive integer, or a one-line error (exit code 2).
#pragma once
#include <cstdint>
#include <exception>
#include <string>

#include "slope/core/error.hpp"

inline int64_t size_argument(const char* text, const char* name) {
  size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  slope::require(used == std::string(text).size() && value > 0,
                 std::string(name) + " must be a positive integer (got '" + text + "')");
  return value;
}
