// W's 2:4 positions read back from cuSPARSELt's metadata (core/sparselt_metadata.hpp), so that
// a training layer need not store them beside its compressed W.
#include <string>

#include "slope/core/error.hpp"
#include "slope/core/sparselt_metadata.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/kernels.hpp"

namespace slope::gpu {
namespace {

// One thread per index byte (groups 2j and 2j + 1 of one row). The metadata is 1/16 of W's
// bytes, so the scattered reads cost little beside the kernels that use the positions.
__global__ void DecodeSparseLtPositionsKernel(const uint8_t* metadata, uint8_t* indices, int64_t rows, int64_t cols) {
  const int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  const int64_t per_row = cols / 8;
  if (c >= rows * per_row) return;
  const int64_t row = c / per_row, group = (c % per_row) * 2;
  uint8_t out = 0;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t i = sparselt_metadata_code_index(row, group + h, cols);
    out |= static_cast<uint8_t>(((metadata[i / 2] >> (4 * (i % 2))) & 0xF) << (4 * h));
  }
  indices[c] = out;
}

}  // namespace

void decode_sparselt_positions(const void* compressed, uint8_t* indices, int64_t rows, int64_t cols, DType dtype,
                               cudaStream_t stream) {
  require(rows > 0 && cols > 0 && cols % 8 == 0,
          "decode_sparselt_positions: W must have rows and a multiple of 8 columns (got " + std::to_string(rows) +
              " x " + std::to_string(cols) + ")");
  require(dtype != DType::kF32, "decode_sparselt_positions: compressed weights are fp16 or bf16");
  const auto* metadata = static_cast<const uint8_t*>(compressed) + sparselt_metadata_offset(rows, cols, 2);
  const int64_t bytes = rows * cols / 8;
  const int threads = 256;
  DecodeSparseLtPositionsKernel<<<static_cast<unsigned>((bytes + threads - 1) / threads), threads, 0, stream>>>(
      metadata, indices, rows, cols);
  SLOPE_CHECK_LAUNCH("DecodeSparseLtPositionsKernel");
}

}  // namespace slope::gpu
