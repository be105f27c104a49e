// W -> W^{R,C} kernels of the optimizer step. Each block expands a 128 x 64 tile of W^R from
// its kept values, indices and column-mask flags into shared memory (coalesced reads along
// W's rows), then walks the tile down its columns to produce T's groups (coalesced writes
// along T's rows).
#include <string>

#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/refresh_kernels.hpp"
#include "nm_rule.cuh"
#include "type_traits.cuh"

namespace slope::gpu {
namespace {

// A tile covers 128 rows of W (32 groups of T: 128-byte runs of T's values per column of W)
// and 64 columns.
constexpr int kRows = 128, kCols = 64;
constexpr int kThreads = 256;
constexpr uint8_t kInMask = 1, kFlagged = 2;

// A 128 x 64 tile of W^R: values (zeros off W's mask) and per element kInMask | kFlagged.
struct Tile {
  float val[kRows][kCols + 1];
  uint8_t state[kRows][kCols + 4];
};

// Column, within the tile, of kept value k (0..31) of a row whose index bytes start at `idx`.
__device__ __forceinline__ int kept_column(const uint8_t* idx, int k) {
  const int group = k / 2;
  const int shift = (group % 2) * 4 + (k % 2) * 2;
  return group * 4 + ((idx[group / 2] >> shift) & 3);
}

// One thread per row group of W: its two kept values (one 4-byte load), their positions and
// flags, written out as the group's four elements (so nothing needs clearing first).
template <typename T>
__device__ void load_tile(Tile& tile, const T* kept, const uint8_t* indices, const uint8_t* flags, int64_t rows,
                          int64_t cols, int64_t row0, int64_t col0) {
  const int64_t half = cols / 2;
  for (int i = threadIdx.x; i < kRows * (kCols / 4); i += kThreads) {
    const int r = i / (kCols / 4), group = i % (kCols / 4);
    const int64_t gr = row0 + r;
    const bool valid = gr < rows && col0 + 4 * group < cols;
    float v[2] = {0.0f, 0.0f};
    int pos[2] = {0, 1};
    uint8_t flag[2] = {0, 0};
    if (valid) {
      const int64_t q = gr * half + col0 / 2 + 2 * group;  // first kept value of the group
      if (kept) {
        union {
          uint32_t raw;
          T e[2];
        } pair;
        pair.raw = *reinterpret_cast<const uint32_t*>(kept + q);
        v[0] = to_float(pair.e[0]);
        v[1] = to_float(pair.e[1]);
      } else {
        v[0] = v[1] = 1.0f;
      }
      const uint8_t nibble = indices[(gr * cols + col0) / 8 + group / 2] >> ((group % 2) * 4);
      pos[0] = nibble & 3;
      pos[1] = (nibble >> 2) & 3;
      if (flags) {
        const uint8_t bits = flags[q / 8] >> (q % 8);  // q is even: both bits in one byte
        flag[0] = bits & 1;
        flag[1] = (bits >> 1) & 1;
      }
    }
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      const int j = pos[0] == s ? 0 : (pos[1] == s ? 1 : -1);
      tile.val[r][4 * group + s] = j >= 0 ? v[j] : 0.0f;
      tile.state[r][4 * group + s] = valid && j >= 0 ? (kInMask | (flag[j] ? kFlagged : 0)) : 0;
    }
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
__global__ void ColumnMaskFlagsKernel(const T* kept, const uint8_t* indices, uint8_t* flags, int64_t rows,
                                      int64_t cols) {
  __shared__ Tile tile;
  const int64_t row0 = int64_t{blockIdx.y} * kRows, col0 = int64_t{blockIdx.x} * kCols;
  load_tile(tile, kept, indices, nullptr, rows, cols, row0, col0);
  for (int item = threadIdx.x; item < kCols * (kRows / 4); item += kThreads) {
    const int c = item / (kRows / 4), g = item % (kRows / 4);
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
  for (int item = threadIdx.x; item < kRows * (kCols / 16); item += kThreads) {
    const int r = item / (kCols / 16), b = item % (kCols / 16);
    const int64_t gr = row0 + r;
    if (gr >= rows || col0 + 16 * b >= cols) continue;
    const uint8_t* idx = indices + (gr * cols + col0) / 8;
    uint8_t byte = 0;
    for (int j = 0; j < 8; ++j) {
      const int k = 8 * b + j;
      if (tile.state[r][kept_column(idx, k)] & kFlagged) byte |= static_cast<uint8_t>(1u << j);
    }
    flags[(gr * half + col0 / 2) / 8 + b] = byte;
  }
}

template <typename T>
__global__ void TransposeFromKeptKernel(const T* kept, const uint8_t* indices, const uint8_t* flags, T* t_dense,
                                        int64_t rows, int64_t cols) {
  __shared__ Tile tile;
  const int64_t row0 = int64_t{blockIdx.y} * kRows, col0 = int64_t{blockIdx.x} * kCols;
  load_tile(tile, kept, indices, flags, rows, cols, row0, col0);
  for (int item = threadIdx.x; item < kCols * (kRows / 4); item += kThreads) {
    const int c = item / (kRows / 4), g = item % (kRows / 4);
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

// The per-step refresh, without shared memory: thread (column j of W, 32-row block of W)
// walks its 32 rows, picks element (r, j) out of the kept pair of row r's group j / 4 (a
// 4-byte load that the four threads of that group share), and writes the 8 groups of T's
// row j it has built as one 32-byte run. A warp covers 32 consecutive columns, so each of
// its row reads is one 32-byte sector; nothing waits on a barrier.
constexpr int kRefreshRows = 32;

template <typename T>
__global__ void RefreshTransposeValuesKernel(const T* kept, const uint8_t* indices, const uint8_t* flags,
                                             TransposeParts parts, int64_t rows, int64_t cols) {
  const int64_t j = int64_t{blockIdx.x} * 32 + threadIdx.x % 32;
  const int64_t row0 = (int64_t{blockIdx.y} * (blockDim.x / 32) + threadIdx.x / 32) * kRefreshRows;
  if (j >= cols || row0 >= rows) return;
  const int64_t half = cols / 2;
  const int group = static_cast<int>(j / 4), within = static_cast<int>(j % 4);
  const int rows_here = rows - row0 < kRefreshRows ? static_cast<int>(rows - row0) : kRefreshRows;
  union {
    uint4 raw[2];
    T e[kRefreshRows / 2];
  } out;
#pragma unroll
  for (int g = 0; g < kRefreshRows / 4; ++g) {
    float v[4];
    bool flagged[4];
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      v[s] = 0.0f;
      flagged[s] = false;
      const int64_t r = row0 + 4 * g + s;
      if (4 * g + s >= rows_here) continue;
      const uint8_t nibble = indices[(r * cols) / 8 + group / 2] >> ((group % 2) * 4);
      const int slot = (nibble & 3) == within ? 0 : (((nibble >> 2) & 3) == within ? 1 : -1);
      if (slot < 0) continue;  // not on W's mask
      const int64_t q = r * half + 2 * group + slot;
      flagged[s] = (flags[q / 8] >> (q % 8)) & 1;
      if (flagged[s]) v[s] = to_float(kept[q]);
    }
    // T's slots: the flagged positions, then the lowest-index others, ascending.
    int sel[2] = {-1, -1}, n = 0;
#pragma unroll
    for (int s = 0; s < 4; ++s)
      if (n < 2 && flagged[s]) sel[n++] = s;
#pragma unroll
    for (int s = 0; s < 4; ++s)
      if (n < 2 && !flagged[s]) sel[n++] = s;
    const int p0 = min(sel[0], sel[1]), p1 = max(sel[0], sel[1]);
    out.e[2 * g] = from_float<T>(v[p0]);
    out.e[2 * g + 1] = from_float<T>(v[p1]);
  }
  T* part = static_cast<T*>(parts.values[j / parts.rows_per_part]);
  T* dst = part + (j % parts.rows_per_part) * (rows / 2) + row0 / 2;
  if (rows_here == kRefreshRows) {  // 16-byte aligned: rows is a multiple of 16
    reinterpret_cast<uint4*>(dst)[0] = out.raw[0];
    reinterpret_cast<uint4*>(dst)[1] = out.raw[1];
  } else {
    for (int k = 0; k < rows_here / 2; ++k) dst[k] = out.e[k];
  }
}

// One thread per index byte: 4 kept values in, 8 dense elements out.
template <typename T>
__global__ void ScatterKept2to4Kernel(const T* kept, const uint8_t* indices, T* dense, int64_t chunks) {
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
  const uint8_t idx = indices[c];
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
  return dim3(static_cast<unsigned>((cols + kCols - 1) / kCols), static_cast<unsigned>((rows + kRows - 1) / kRows));
}

}  // namespace

void column_mask_flags(const void* w_kept, const uint8_t* w_indices, uint8_t* flags, int64_t rows, int64_t cols,
                       DType dtype, cudaStream_t stream) {
  check_shape("column_mask_flags", rows, cols);
  require(w_kept != nullptr, "column_mask_flags: needs W's kept values");
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    ColumnMaskFlagsKernel<T><<<tile_grid(rows, cols), kThreads, 0, stream>>>(static_cast<const T*>(w_kept), w_indices,
                                                                            flags, rows, cols);
  });
  SLOPE_CHECK_LAUNCH("ColumnMaskFlagsKernel");
}

void transpose_from_kept(const void* w_kept, const uint8_t* w_indices, const uint8_t* flags, void* t_dense,
                         int64_t rows, int64_t cols, DType dtype, cudaStream_t stream) {
  check_shape("transpose_from_kept", rows, cols);
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    TransposeFromKeptKernel<T><<<tile_grid(rows, cols), kThreads, 0, stream>>>(
        static_cast<const T*>(w_kept), w_indices, flags, static_cast<T*>(t_dense), rows, cols);
  });
  SLOPE_CHECK_LAUNCH("TransposeFromKeptKernel");
}

void refresh_transpose_values(const void* w_kept, const uint8_t* w_indices, const uint8_t* flags,
                              const TransposeParts& parts, int64_t rows, int64_t cols, DType dtype,
                              cudaStream_t stream) {
  check_shape("refresh_transpose_values", rows, cols);
  require(parts.count >= 1 && parts.count <= TransposeParts::kMax && parts.rows_per_part * parts.count == cols,
          "refresh_transpose_values: the parts of T must cover its " + std::to_string(cols) + " rows");
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    // 8 warps per block, each one 32-row block of W.
    const dim3 grid(static_cast<unsigned>((cols + 31) / 32),
                    static_cast<unsigned>((rows + 8 * kRefreshRows - 1) / (8 * kRefreshRows)));
    RefreshTransposeValuesKernel<T><<<grid, 256, 0, stream>>>(static_cast<const T*>(w_kept), w_indices, flags, parts,
                                                              rows, cols);
  });
  SLOPE_CHECK_LAUNCH("RefreshTransposeValuesKernel");
}

void scatter_kept_2to4(const void* kept, const uint8_t* indices, void* dense, int64_t rows, int64_t cols,
                       DType dtype, cudaStream_t stream) {
  require(rows > 0 && cols > 0 && cols % 8 == 0,
          "scatter_kept_2to4: columns (" + std::to_string(cols) + ") must be a positive multiple of 8");
  const int64_t chunks = rows * cols / 8;
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    ScatterKept2to4Kernel<T><<<static_cast<unsigned>((chunks + 255) / 256), 256, 0, stream>>>(
        static_cast<const T*>(kept), indices, static_cast<T*>(dense), chunks);
  });
  SLOPE_CHECK_LAUNCH("ScatterKept2to4Kernel");
}

}  // namespace slope::gpu
