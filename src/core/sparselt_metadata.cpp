#include "slope/core/sparselt_metadata.hpp"

#include <string>

#include "slope/core/error.hpp"

namespace slope {

std::vector<uint8_t> positions_from_sparselt_metadata(const uint8_t* metadata, int64_t rows, int64_t cols) {
  require(rows > 0 && cols > 0 && cols % 8 == 0,
          "metadata positions need a positive row count and a multiple of 8 columns (got " + std::to_string(rows) +
              " x " + std::to_string(cols) + ")");
  std::vector<uint8_t> out(static_cast<size_t>(rows * cols / 8));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < cols / 4; ++g) {
      const int64_t i = sparselt_metadata_code_index(r, g, cols);
      const uint8_t code = (metadata[i / 2] >> (4 * (i % 2))) & 0xF;
      out[static_cast<size_t>((r * cols / 4 + g) / 2)] |= static_cast<uint8_t>(code << (4 * (g % 2)));
    }
  return out;
}

}  // namespace slope
