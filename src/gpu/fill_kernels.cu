#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/device_buffer.hpp"
#include "slope/gpu/kernels.hpp"
#include "type_traits.cuh"

namespace slope::gpu {
namespace {

__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

template <typename T>
__global__ void FillUniformKernel(T* out, int64_t count, uint64_t seed, float scale) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x) {
    const uint64_t bits = splitmix64(seed * 0x100000001b3ull + static_cast<uint64_t>(i));
    // 24 random bits -> [0, 1) exactly representable in fp32.
    const float u = static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);
    out[i] = from_float<T>((2.0f * u - 1.0f) * scale);
  }
}

// Magnitudes in [1, 2), random signs: no element is zero.
template <typename T>
__global__ void FillNonzeroKernel(T* out, int64_t count, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x) {
    const uint64_t bits = splitmix64(seed * 0x100000001b3ull + static_cast<uint64_t>(i));
    const float u = static_cast<float>(bits >> 41) * (1.0f / 8388608.0f);
    out[i] = from_float<T>((bits & 1) ? -(1.0f + u) : 1.0f + u);
  }
}

template <typename T>
__global__ void SquaredErrorKernel(const T* a, const T* b, int64_t count, double* sums) {
  double num = 0.0, den = 0.0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x) {
    const double x = to_float(a[i]), y = to_float(b[i]);
    num += (x - y) * (x - y);
    den += y * y;
  }
  // Warp reduction first: one atomic per warp instead of one per thread.
  for (int offset = 16; offset > 0; offset /= 2) {
    num += __shfl_down_sync(0xffffffffu, num, offset);
    den += __shfl_down_sync(0xffffffffu, den, offset);
  }
  if ((threadIdx.x & 31) == 0) {
    atomicAdd(&sums[0], num);
    atomicAdd(&sums[1], den);
  }
}

int grid_for(int64_t count, int threads) {
  const int64_t blocks = (count + threads - 1) / threads;
  return static_cast<int>(blocks < 4096 ? (blocks > 0 ? blocks : 1) : 4096);
}

}  // namespace

void fill_uniform(void* out, int64_t count, uint64_t seed, float scale, DType dtype, cudaStream_t stream) {
  require(count >= 0, "fill_uniform: negative count");
  if (count == 0) return;
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    FillUniformKernel<T><<<grid_for(count, 256), 256, 0, stream>>>(static_cast<T*>(out), count, seed, scale);
  });
  SLOPE_CHECK_LAUNCH("FillUniformKernel");
}

void fill_nonzero(void* out, int64_t count, uint64_t seed, DType dtype, cudaStream_t stream) {
  require(count >= 0, "fill_nonzero: negative count");
  if (count == 0) return;
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    FillNonzeroKernel<T><<<grid_for(count, 256), 256, 0, stream>>>(static_cast<T*>(out), count, seed);
  });
  SLOPE_CHECK_LAUNCH("FillNonzeroKernel");
}

double relative_error_device(const void* a, const void* b, int64_t count, DType dtype, cudaStream_t stream) {
  DeviceBuffer sums(2 * sizeof(double));
  SLOPE_CHECK(cudaMemsetAsync(sums.get(), 0, 2 * sizeof(double), stream));
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    SquaredErrorKernel<T><<<grid_for(count, 256), 256, 0, stream>>>(static_cast<const T*>(a),
                                                                    static_cast<const T*>(b), count,
                                                                    sums.as<double>());
  });
  SLOPE_CHECK_LAUNCH("SquaredErrorKernel");
  double host[2];
  SLOPE_CHECK(cudaMemcpyAsync(host, sums.get(), sizeof(host), cudaMemcpyDeviceToHost, stream));
  SLOPE_CHECK(cudaStreamSynchronize(stream));
  if (host[1] == 0.0) return host[0] == 0.0 ? 0.0 : INFINITY;
  return sqrt(host[0] / host[1]);
}

}  // namespace slope::gpu
