// W's 2:4 positions copied out of cuSPARSELt's metadata (core/sparselt_metadata.hpp): the
// start-up check that the metadata holds them, and its test.
#include <string>

#include "slope/core/error.hpp"
#include "slope/core/sparselt_metadata.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/kernels.hpp"
#include "positions.cuh"

namespace slope::gpu {
namespace {

// One thread per index byte (groups 2j and 2j + 1 of one row), through the same reader the
// training kernels use on the metadata in place (positions.cuh).
__global__ void DecodeSparseLtPositionsKernel(Positions2to4 metadata, uint8_t* indices, int64_t rows, int64_t cols) {
  const int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  const int64_t per_row = cols / 8;
  if (c >= rows * per_row) return;
  indices[c] = position_byte(metadata, c / per_row, c % per_row, cols);
}

}  // namespace

void decode_sparselt_positions(const void* compressed, uint8_t* indices, int64_t rows, int64_t cols, DType dtype,
                               cudaStream_t stream) {
  require(rows > 0 && cols > 0 && cols % 8 == 0,
          "decode_sparselt_positions: W must have rows and a multiple of 8 columns (got " + std::to_string(rows) +
              " x " + std::to_string(cols) + ")");
  require(dtype != DType::kF32, "decode_sparselt_positions: compressed weights are fp16 or bf16");
  const Positions2to4 metadata = Positions2to4::in_compressed(compressed, rows, cols);
  const int64_t bytes = rows * cols / 8;
  const int threads = 256;
  DecodeSparseLtPositionsKernel<<<static_cast<unsigned>((bytes + threads - 1) / threads), threads, 0, stream>>>(
      metadata, indices, rows, cols);
  SLOPE_CHECK_LAUNCH("DecodeSparseLtPositionsKernel");
}

}  // namespace slope::gpu
