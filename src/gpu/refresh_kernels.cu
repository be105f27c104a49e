// W -> W^{R,C} kernels of the optimizer step. Each block expands a 64 x 64 tile of W^R from
// its kept values, 2:4 positions and column-mask flags into shared memory (coalesced reads along
// W's rows), then walks the tile down its columns to produce T's groups (coalesced writes
// along T's rows).
#include <string>

#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/refresh_kernels.hpp"
#include "nm_rule.cuh"
#include "positions.cuh"
#include "type_traits.cuh"

namespace slope::gpu {
namespace {

constexpr int kTile = 64;
constexpr int kThreads = 256;
constexpr uint8_t kInMask = 1, kFlagged = 2;

// A 64 x 64 tile of W^R: values (zeros off W's mask), per element kInMask | kFlagged, and the
// tile's 2:4 position bytes (8 per row), read once per tile: from W's metadata each byte takes
// an address computation and two scattered loads.
struct Tile {
  float val[kTile][kTile + 1];
  uint8_t state[kTile][kTile + 4];
  uint8_t positions[kTile][kTile / 8];
};

// Column, within the tile, of kept value k (0..31) of tile row r.
__device__ __forceinline__ int kept_column(const Tile& tile, int r, int k) {
  const int group = k / 2;
  const int shift = (group % 2) * 4 + (k % 2) * 2;
  return group * 4 + ((tile.positions[r][group / 2] >> shift) & 3);
}

template <typename T>
__device__ void load_tile(Tile& tile, const T* kept, Positions2to4 positions, const uint8_t* flags, int64_t rows,
                          int64_t cols, int64_t row0, int64_t col0) {
  for (int i = threadIdx.x; i < kTile * kTile; i += kThreads) {
    tile.val[i / kTile][i % kTile] = 0.0f;
    tile.state[i / kTile][i % kTile] = 0;
  }
  for (int i = threadIdx.x; i < kTile * (kTile / 8); i += kThreads) {
    const int r = i / (kTile / 8), p = i % (kTile / 8);
    if (row0 + r < rows && col0 + 8 * p < cols)
      tile.positions[r][p] = position_byte(positions, row0 + r, col0 / 8 + p, cols);
  }
  __syncthreads();
  const int64_t half = cols / 2;
  for (int i = threadIdx.x; i < kTile * kTile / 2; i += kThreads) {
    const int r = i / (kTile / 2), k = i % (kTile / 2);
    const int64_t gr = row0 + r;
    if (gr >= rows || col0 + 4 * (k / 2) >= cols) continue;
    const int64_t q = gr * half + col0 / 2 + k;  // kept value index in W's compressed order
    const int c = kept_column(tile, r, k);
    tile.val[r][c] = kept ? to_float(kept[q]) : 1.0f;
    tile.state[r][c] = kInMask | (flags && ((flags[q / 8] >> (q % 8)) & 1) ? kFlagged : 0);
  }
  __syncthreads();
}

// T's two kept slots in group (rows 4g..4g+3 of tile column c): flagged first, then the
// lowest-index others; ascending.
__device__ __forceinline__ void transpose_slots(const Tile& tile, int c, int g, int& p0, int& p1) {
  int sel[2] = {-1, -1}, n = 0;
#pragma unroll
  for (int s = 0; s < 4; ++s)
    if (n < 2 && tile.state[4 * g + s][c] == (kInMask | kFlagged)) sel[n++] = s;
#pragma unroll
  for (int s = 0; s < 4; ++s)
    if (n < 2 && tile.state[4 * g + s][c] != (kInMask | kFlagged)) sel[n++] = s;
  p0 = min(sel[0], sel[1]);
  p1 = max(sel[0], sel[1]);
}

__device__ __forceinline__ float transpose_value(const Tile& tile, int c, int g, int s) {
  return tile.state[4 * g + s][c] == (kInMask | kFlagged) ? tile.val[4 * g + s][c] : 0.0f;
}

template <typename T>
__global__ void ColumnMaskFlagsKernel(const T* kept, Positions2to4 positions, uint8_t* flags, int64_t rows,
                                      int64_t cols) {
  __shared__ Tile tile;
  const int64_t row0 = int64_t{blockIdx.y} * kTile, col0 = int64_t{blockIdx.x} * kTile;
  load_tile(tile, kept, positions, nullptr, rows, cols, row0, col0);
  for (int item = threadIdx.x; item < kTile * kTile / 4; item += kThreads) {
    const int c = item / (kTile / 4), g = item % (kTile / 4);
    float mag[4];
#pragma unroll
    for (int s = 0; s < 4; ++s) mag[s] = rank_magnitude(tile.val[4 * g + s][c]);
#pragma unroll
    for (int s = 0; s < 4; ++s)
      if (kept_in_group4(mag, s) && (tile.state[4 * g + s][c] & kInMask)) tile.state[4 * g + s][c] |= kFlagged;
  }
  __syncthreads();
  // One flag byte per 8 kept values (16 columns) of a row.
  const int64_t half = cols / 2;
  for (int item = threadIdx.x; item < kTile * (kTile / 16); item += kThreads) {
    const int r = item / (kTile / 16), b = item % (kTile / 16);
    const int64_t gr = row0 + r;
    if (gr >= rows || col0 + 16 * b >= cols) continue;
    uint8_t byte = 0;
    for (int j = 0; j < 8; ++j) {
      const int k = 8 * b + j;
      if (tile.state[r][kept_column(tile, r, k)] & kFlagged) byte |= static_cast<uint8_t>(1u << j);
    }
    flags[(gr * half + col0 / 2) / 8 + b] = byte;
  }
}

template <typename T>
__global__ void TransposeFromKeptKernel(const T* kept, Positions2to4 positions, const uint8_t* flags, T* t_dense,
                                        int64_t rows, int64_t cols) {
  __shared__ Tile tile;
  const int64_t row0 = int64_t{blockIdx.y} * kTile, col0 = int64_t{blockIdx.x} * kTile;
  load_tile(tile, kept, positions, flags, rows, cols, row0, col0);
  for (int item = threadIdx.x; item < kTile * kTile / 4; item += kThreads) {
    const int c = item / (kTile / 4), g = item % (kTile / 4);
    const int64_t gc = col0 + c, gr = row0 + 4 * g;
    if (gc >= cols || gr >= rows) continue;
    union {
      uint2 raw;
      T e[4];
    } out;
    int p0, p1;
    transpose_slots(tile, c, g, p0, p1);
#pragma unroll
    for (int s = 0; s < 4; ++s)
      out.e[s] = from_float<T>(kept ? transpose_value(tile, c, g, s) : (s == p0 || s == p1 ? 1.0f : 0.0f));
    *reinterpret_cast<uint2*>(t_dense + gc * rows + gr) = out.raw;
  }
}

template <typename T>
__global__ void RefreshTransposeValuesKernel(const T* kept, Positions2to4 positions, const uint8_t* flags,
                                             TransposeParts parts, int64_t rows, int64_t cols) {
  __shared__ Tile tile;
  const int64_t row0 = int64_t{blockIdx.y} * kTile, col0 = int64_t{blockIdx.x} * kTile;
  load_tile(tile, kept, positions, flags, rows, cols, row0, col0);
  const int64_t half = rows / 2;  // kept values per row of T
  for (int item = threadIdx.x; item < kTile * kTile / 4; item += kThreads) {
    const int c = item / (kTile / 4), g = item % (kTile / 4);
    const int64_t gc = col0 + c, gr = row0 + 4 * g;
    if (gc >= cols || gr >= rows) continue;
    int p0, p1;
    transpose_slots(tile, c, g, p0, p1);
    union {
      uint32_t raw;
      T e[2];
    } out;
    out.e[0] = from_float<T>(transpose_value(tile, c, g, p0));
    out.e[1] = from_float<T>(transpose_value(tile, c, g, p1));
    T* part = static_cast<T*>(parts.values[gc / parts.rows_per_part]);
    *reinterpret_cast<uint32_t*>(part + (gc % parts.rows_per_part) * half + gr / 2) = out.raw;
  }
}

// One thread per index byte: 4 kept values in, 8 dense elements out.
template <typename T>
__global__ void ScatterKept2to4Kernel(const T* kept, Positions2to4 positions, T* dense, int64_t chunks, int64_t cols) {
  const int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (c >= chunks) return;
  union {
    uint2 raw;
    T v[4];
  } in;
  union {
    uint4 raw;
    T v[8];
  } out;
  if (kept) in.raw = reinterpret_cast<const uint2*>(kept)[c];
#pragma unroll
  for (int j = 0; j < 8; ++j) out.v[j] = from_float<T>(0.0f);
  const uint8_t idx = position_byte_at(positions, c, cols);
#pragma unroll
  for (int j = 0; j < 4; ++j) out.v[(j / 2) * 4 + ((idx >> (2 * j)) & 3)] = kept ? in.v[j] : from_float<T>(1.0f);
  reinterpret_cast<uint4*>(dense)[c] = out.raw;
}

void check_shape(const char* what, int64_t rows, int64_t cols) {
  require(rows > 0 && cols > 0 && rows % 16 == 0 && cols % 16 == 0,
          std::string(what) + ": W must be a positive multiple of 16 in both dimensions (got " + std::to_string(rows) +
              " x " + std::to_string(cols) + ")");
}

dim3 tile_grid(int64_t rows, int64_t cols) {
  return dim3(static_cast<unsigned>((cols + kTile - 1) / kTile), static_cast<unsigned>((rows + kTile - 1) / kTile));
}

}  // namespace

void column_mask_flags(const void* w_kept, Positions2to4 w_positions, uint8_t* flags, int64_t rows, int64_t cols,
                       DType dtype, cudaStream_t stream) {
  check_shape("column_mask_flags", rows, cols);
  require(w_kept != nullptr, "column_mask_flags: needs W's kept values");
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    ColumnMaskFlagsKernel<T><<<tile_grid(rows, cols), kThreads, 0, stream>>>(static_cast<const T*>(w_kept),
                                                                            w_positions, flags, rows, cols);
  });
  SLOPE_CHECK_LAUNCH("ColumnMaskFlagsKernel");
}

void transpose_from_kept(const void* w_kept, Positions2to4 w_positions, const uint8_t* flags, void* t_dense,
                         int64_t rows, int64_t cols, DType dtype, cudaStream_t stream) {
  check_shape("transpose_from_kept", rows, cols);
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    TransposeFromKeptKernel<T><<<tile_grid(rows, cols), kThreads, 0, stream>>>(
        static_cast<const T*>(w_kept), w_positions, flags, static_cast<T*>(t_dense), rows, cols);
  });
  SLOPE_CHECK_LAUNCH("TransposeFromKeptKernel");
}

void refresh_transpose_values(const void* w_kept, Positions2to4 w_positions, const uint8_t* flags,
                              const TransposeParts& parts, int64_t rows, int64_t cols, DType dtype,
                              cudaStream_t stream) {
  check_shape("refresh_transpose_values", rows, cols);
  require(parts.count >= 1 && parts.count <= TransposeParts::kMax && parts.rows_per_part * parts.count == cols,
          "refresh_transpose_values: the parts of T must cover its " + std::to_string(cols) + " rows");
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    RefreshTransposeValuesKernel<T><<<tile_grid(rows, cols), kThreads, 0, stream>>>(
        static_cast<const T*>(w_kept), w_positions, flags, parts, rows, cols);
  });
  SLOPE_CHECK_LAUNCH("RefreshTransposeValuesKernel");
}

void scatter_kept_2to4(const void* kept, Positions2to4 positions, void* dense, int64_t rows, int64_t cols,
                       DType dtype, cudaStream_t stream) {
  require(rows > 0 && cols > 0 && cols % 8 == 0,
          "scatter_kept_2to4: columns (" + std::to_string(cols) + ") must be a positive multiple of 8");
  const int64_t chunks = rows * cols / 8;
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    ScatterKept2to4Kernel<T><<<static_cast<unsigned>((chunks + 255) / 256), 256, 0, stream>>>(
        static_cast<const T*>(kept), positions, static_cast<T*>(dense), chunks, cols);
  });
  SLOPE_CHECK_LAUNCH("ScatterKept2to4Kernel");
}

}  // namespace slope::gpu
