// Layout changes of 16-bit matrices (setup-time work: adapters, transposed weights).
#include <cstdint>

#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/kernels.hpp"

namespace slope::gpu {
namespace {

constexpr int kTile = 32;

// Classic shared-memory transpose: coalesced reads of `in` rows and writes of `out` rows;
// the +1 column keeps the transposed walk through the tile free of bank conflicts.
__global__ void Transpose16Kernel(const uint16_t* in, uint16_t* out, int64_t rows, int64_t cols) {
  __shared__ uint16_t tile[kTile][kTile + 1];
  const int64_t r0 = int64_t{blockIdx.y} * kTile, c0 = int64_t{blockIdx.x} * kTile;
  for (int i = threadIdx.y; i < kTile; i += blockDim.y) {
    const int64_t r = r0 + i, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[i][threadIdx.x] = in[r * cols + c];
  }
  __syncthreads();
  for (int i = threadIdx.y; i < kTile; i += blockDim.y) {
    const int64_t r = c0 + i, c = r0 + threadIdx.x;  // row of out = column of in
    if (r < cols && c < rows) out[r * rows + c] = tile[threadIdx.x][i];
  }
}

}  // namespace

void transpose_16bit(const void* in, void* out, int64_t rows, int64_t cols, cudaStream_t stream) {
  require(rows > 0 && cols > 0, "transpose_16bit: empty matrix");
  require(in != out, "transpose_16bit cannot work in place");
  const dim3 grid(static_cast<unsigned>((cols + kTile - 1) / kTile), static_cast<unsigned>((rows + kTile - 1) / kTile));
  Transpose16Kernel<<<grid, dim3(kTile, 8), 0, stream>>>(static_cast<const uint16_t*>(in), static_cast<uint16_t*>(out),
                                                          rows, cols);
  SLOPE_CHECK_LAUNCH("Transpose16Kernel");
}

}  // namespace slope::gpu
