// Backward-pass kernels of the SLoPe training layer; all memory-bound, 16-byte accesses.
#include <string>

#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/kernels.hpp"
#include "positions.cuh"
#include "type_traits.cuh"

namespace slope::gpu {
namespace {

// One thread per 8 dense elements (one index byte, two groups): a 16-byte read of the dense
// gradient and an 8-byte write of its 4 kept values.
template <typename T>
__global__ void GatherKept2to4Kernel(const T* dense, Positions2to4 positions, T* kept, int64_t chunks, int64_t cols,
                                     bool accumulate) {
  const int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (c >= chunks) return;
  union In {
    uint4 raw;
    T v[8];
  } in;
  union Out {
    uint2 raw;
    T v[4];
  } out, old;
  in.raw = reinterpret_cast<const uint4*>(dense)[c];
  const uint8_t idx = position_byte_at(positions, c, cols);
  if (accumulate) old.raw = reinterpret_cast<const uint2*>(kept)[c];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int group = j / 2;
    const int pos = (idx >> (2 * j)) & 3;  // slot j: group j/2, its (j%2)-th kept element
    const float g = to_float(in.v[group * 4 + pos]);
    out.v[j] = from_float<T>(accumulate ? to_float(old.v[j]) + g : g);
  }
  reinterpret_cast<uint2*>(kept)[c] = out.raw;
}

// One block per row: each thread sums a strided slice in fp32, then a shared reduction.
template <typename T>
__global__ void RowSumsKernel(const T* in, T* out, int64_t cols, bool accumulate) {
  const int64_t row = blockIdx.x;
  const T* p = in + row * cols;
  float acc = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) acc += to_float(p[c]);
  __shared__ float partial[32];
  for (int offset = 16; offset > 0; offset /= 2) acc += __shfl_down_sync(0xffffffffu, acc, offset);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x / 32] = acc;
  __syncthreads();
  if (threadIdx.x < 32) {
    acc = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : 0.0f;
    for (int offset = 16; offset > 0; offset /= 2) acc += __shfl_down_sync(0xffffffffu, acc, offset);
    if (threadIdx.x == 0) out[row] = from_float<T>(accumulate ? to_float(out[row]) + acc : acc);
  }
}

template <typename T>
__global__ void ReluBackwardKernel(T* grad, const T* out, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x)
    if (!(to_float(out[i]) > 0.0f)) grad[i] = from_float<T>(0.0f);
}

template <typename T>
__global__ void ZeroWhereZeroKernel(T* grad, const T* param, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x)
    if (to_float(param[i]) == 0.0f) grad[i] = from_float<T>(0.0f);
}

}  // namespace

void gather_kept_2to4(const void* dense, Positions2to4 positions, void* kept, int64_t rows, int64_t cols,
                      bool accumulate, DType dtype, cudaStream_t stream) {
  require(rows > 0 && cols > 0 && cols % 8 == 0,
          "gather_kept_2to4: columns (" + std::to_string(cols) + ") must be a positive multiple of 8");
  const int64_t chunks = rows * cols / 8;
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    GatherKept2to4Kernel<T><<<static_cast<unsigned>((chunks + 255) / 256), 256, 0, stream>>>(
        static_cast<const T*>(dense), positions, static_cast<T*>(kept), chunks, cols, accumulate);
  });
  SLOPE_CHECK_LAUNCH("GatherKept2to4Kernel");
}

void row_sums(const void* in, void* out, int64_t rows, int64_t cols, bool accumulate, DType dtype,
              cudaStream_t stream) {
  require(rows > 0 && cols > 0, "row_sums: empty matrix");
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    RowSumsKernel<T><<<static_cast<unsigned>(rows), 256, 0, stream>>>(static_cast<const T*>(in), static_cast<T*>(out),
                                                                      cols, accumulate);
  });
  SLOPE_CHECK_LAUNCH("RowSumsKernel");
}

void relu_backward(void* grad, const void* out, int64_t count, DType dtype, cudaStream_t stream) {
  require(count > 0, "relu_backward: empty tensor");
  const int64_t blocks = std::min<int64_t>((count + 255) / 256, 8192);
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    ReluBackwardKernel<T><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(static_cast<T*>(grad),
                                                                            static_cast<const T*>(out), count);
  });
  SLOPE_CHECK_LAUNCH("ReluBackwardKernel");
}

void zero_where_zero(void* grad, const void* param, int64_t count, DType dtype, cudaStream_t stream) {
  require(count > 0, "zero_where_zero: empty tensor");
  const int64_t blocks = std::min<int64_t>((count + 255) / 256, 8192);
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    ZeroWhereZeroKernel<T><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(static_cast<T*>(grad),
                                                                             static_cast<const T*>(param), count);
  });
  SLOPE_CHECK_LAUNCH("ZeroWhereZeroKernel");
}

}  // namespace slope::gpu
