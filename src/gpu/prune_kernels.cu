// 2:4 pruning on the GPU, bit-identical to slope::nm_mask on the CPU.
#include <string>

#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/kernels.hpp"
#include "nm_rule.cuh"
#include "type_traits.cuh"

namespace slope::gpu {
namespace {

// One thread per 8 consecutive elements of a row (two groups): one 16-byte load, one
// 16-byte store and one index byte, so the kernel runs at memory speed.
template <typename T>
__global__ void PruneRows2to4Kernel(const T* in, T* out, uint8_t* indices, int64_t chunks) {
  const int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (c >= chunks) return;
  union Pack {
    uint4 raw;
    T v[8];
  } data;
  data.raw = reinterpret_cast<const uint4*>(in)[c];
  uint8_t packed = 0;
#pragma unroll
  for (int g = 0; g < 2; ++g) {
    float mag[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) mag[j] = rank_magnitude(to_float(data.v[g * 4 + j]));
    int slot = 0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (kept_in_group4(mag, j)) {
        packed |= static_cast<uint8_t>(j << (g * 4 + slot * 2));
        ++slot;
      } else {
        data.v[g * 4 + j] = from_float<T>(0.0f);
      }
    }
  }
  reinterpret_cast<uint4*>(out)[c] = data.raw;
  if (indices) indices[c] = packed;
}

// Column 2:4 pruning of a 64 x 64 tile of W^R, written transposed. The tile passes through
// shared memory so that both the reads of W^R and the writes of T are coalesced.
constexpr int kTile = 64;

template <typename T>
__global__ void DoublePruneTransposeKernel(const T* w_r, T* t_out, int64_t rows, int64_t cols) {
  __shared__ float tile[kTile][kTile + 1];  // +1: column walks hit different banks
  const int64_t row0 = int64_t{blockIdx.y} * kTile, col0 = int64_t{blockIdx.x} * kTile;
  for (int i = threadIdx.x; i < kTile * kTile; i += blockDim.x) {
    const int r = i / kTile, c = i % kTile;
    const int64_t gr = row0 + r, gc = col0 + c;
    tile[r][c] = (gr < rows && gc < cols) ? to_float(w_r[gr * cols + gc]) : 0.0f;
  }
  __syncthreads();
  // Work item (c, g): column c of the tile, row group g; g varies fastest so that a warp
  // writes contiguous runs of one row of T.
  for (int item = threadIdx.x; item < kTile * (kTile / 4); item += blockDim.x) {
    const int c = item / (kTile / 4), g = item % (kTile / 4);
    const int64_t gc = col0 + c, gr = row0 + g * 4;
    if (gc >= cols || gr >= rows) continue;
    float v[4], mag[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      v[j] = tile[g * 4 + j][c];
      mag[j] = rank_magnitude(v[j]);
    }
    union Pack {
      uint2 raw;
      T e[4];
    } outv;
#pragma unroll
    for (int j = 0; j < 4; ++j) outv.e[j] = from_float<T>(kept_in_group4(mag, j) ? v[j] : 0.0f);
    *reinterpret_cast<uint2*>(&t_out[gc * rows + gr]) = outv.raw;
  }
}

}  // namespace

void prune_rows_2to4(const void* in, void* out, uint8_t* indices, int64_t rows, int64_t cols, DType dtype,
                     cudaStream_t stream) {
  require(rows > 0 && cols > 0, "prune_rows_2to4: empty matrix");
  require(cols % 8 == 0, "prune_rows_2to4: columns (" + std::to_string(cols) + ") must be a multiple of 8");
  const int64_t chunks = rows * cols / 8;
  const int threads = 256;
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    PruneRows2to4Kernel<T><<<static_cast<unsigned>((chunks + threads - 1) / threads), threads, 0, stream>>>(
        static_cast<const T*>(in), static_cast<T*>(out), indices, chunks);
  });
  SLOPE_CHECK_LAUNCH("PruneRows2to4Kernel");
}

void double_prune_transpose(const void* w_r, void* t_out, int64_t rows, int64_t cols, DType dtype,
                            cudaStream_t stream) {
  require(rows > 0 && cols > 0, "double_prune_transpose: empty matrix");
  require(rows % 4 == 0, "double_prune_transpose: rows (" + std::to_string(rows) + ") must be a multiple of 4");
  require(w_r != t_out, "double_prune_transpose cannot work in place");
  const dim3 grid(static_cast<unsigned>((cols + kTile - 1) / kTile), static_cast<unsigned>((rows + kTile - 1) / kTile));
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    DoublePruneTransposeKernel<T><<<grid, 256, 0, stream>>>(static_cast<const T*>(w_r), static_cast<T*>(t_out),
                                                            rows, cols);
  });
  SLOPE_CHECK_LAUNCH("DoublePruneTransposeKernel");
}

}  // namespace slope::gpu
