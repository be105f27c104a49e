// Multi-tensor gradient norm and AdamW. Each block takes one chunk; threads walk it four
// elements at a time (8-byte 16-bit loads, 16-byte fp32 moment loads) where the tensor's
// length allows, one at a time at a tensor's ragged end.
#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/optimizer_kernels.hpp"
#include "type_traits.cuh"

namespace slope::gpu {
namespace {

constexpr int kThreads = 256;

template <typename T>
union Quad {
  uint2 raw;
  T v[4];
};

template <typename T>
__global__ void GradSquareSumKernel(const OptimizerTensor* tensors, const OptimizerChunk* chunks, float scale,
                                    float* sum) {
  const OptimizerChunk chunk = chunks[blockIdx.x];
  const OptimizerTensor t = tensors[chunk.tensor];
  const int64_t end = min(chunk.begin + kOptimizerChunk, t.count);
  const T* g = static_cast<const T*>(t.grad);
  float acc = 0.0f;
  for (int64_t i = chunk.begin + 4 * int64_t{threadIdx.x}; i < end; i += 4 * kThreads) {
    if (i + 4 <= end) {
      Quad<T> q;
      q.raw = *reinterpret_cast<const uint2*>(g + i);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float x = to_float(q.v[j]) * scale;
        acc += x * x;
      }
    } else {
      for (int64_t j = i; j < end; ++j) {
        const float x = to_float(g[j]) * scale;
        acc += x * x;
      }
    }
  }
  __shared__ float partial[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2) acc += __shfl_down_sync(0xffffffffu, acc, offset);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x / 32] = acc;
  __syncthreads();
  if (threadIdx.x < 32) {
    acc = threadIdx.x < kThreads / 32 ? partial[threadIdx.x] : 0.0f;
    for (int offset = 16; offset > 0; offset /= 2) acc += __shfl_down_sync(0xffffffffu, acc, offset);
    if (threadIdx.x == 0) atomicAdd(sum, acc);
  }
}

struct AdamWArgs {
  float beta1, beta2, eps, keep_decay, step_size, bias2_sqrt, grad_coef;
};

template <typename T>
__device__ __forceinline__ T adamw_one(T p16, T g16, float& m, float& v, const AdamWArgs& a, bool decay) {
  const float g = to_float(g16) * a.grad_coef;
  m = a.beta1 * m + (1.0f - a.beta1) * g;
  v = a.beta2 * v + (1.0f - a.beta2) * g * g;
  const float denom = sqrtf(v) / a.bias2_sqrt + a.eps;
  const float p = to_float(p16) * (decay ? a.keep_decay : 1.0f);
  return from_float<T>(p - a.step_size * m / denom);
}

template <typename T>
__global__ void AdamWKernel(const OptimizerTensor* tensors, const OptimizerChunk* chunks, AdamWArgs a) {
  const OptimizerChunk chunk = chunks[blockIdx.x];
  const OptimizerTensor t = tensors[chunk.tensor];
  const int64_t end = min(chunk.begin + kOptimizerChunk, t.count);
  T* p = static_cast<T*>(t.param);
  const T* g = static_cast<const T*>(t.grad);
  const bool decay = t.decay != 0;
  for (int64_t i = chunk.begin + 4 * int64_t{threadIdx.x}; i < end; i += 4 * kThreads) {
    if (i + 4 <= end) {
      Quad<T> pq, gq;
      pq.raw = *reinterpret_cast<const uint2*>(p + i);
      gq.raw = *reinterpret_cast<const uint2*>(g + i);
      float4 m4 = *reinterpret_cast<const float4*>(t.m + i);
      float4 v4 = *reinterpret_cast<const float4*>(t.v + i);
      pq.v[0] = adamw_one(pq.v[0], gq.v[0], m4.x, v4.x, a, decay);
      pq.v[1] = adamw_one(pq.v[1], gq.v[1], m4.y, v4.y, a, decay);
      pq.v[2] = adamw_one(pq.v[2], gq.v[2], m4.z, v4.z, a, decay);
      pq.v[3] = adamw_one(pq.v[3], gq.v[3], m4.w, v4.w, a, decay);
      *reinterpret_cast<uint2*>(p + i) = pq.raw;
      *reinterpret_cast<float4*>(t.m + i) = m4;
      *reinterpret_cast<float4*>(t.v + i) = v4;
    } else {
      for (int64_t j = i; j < end; ++j) p[j] = adamw_one(p[j], g[j], t.m[j], t.v[j], a, decay);
    }
  }
}

}  // namespace

void grad_square_sum(const OptimizerTensor* tensors, const OptimizerChunk* chunks, int chunk_count, float scale,
                     float* sum, DType dtype, cudaStream_t stream) {
  if (chunk_count == 0) return;
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    GradSquareSumKernel<T><<<static_cast<unsigned>(chunk_count), kThreads, 0, stream>>>(tensors, chunks, scale, sum);
  });
  SLOPE_CHECK_LAUNCH("GradSquareSumKernel");
}

void adamw_multi_tensor(const OptimizerTensor* tensors, const OptimizerChunk* chunks, int chunk_count,
                        const AdamWConfig& c, AdamWStepTerms terms, float grad_coef, DType dtype,
                        cudaStream_t stream) {
  if (chunk_count == 0) return;
  const AdamWArgs args{c.beta1, c.beta2, c.eps, 1.0f - c.lr * c.weight_decay, terms.step_size, terms.bias2_sqrt,
                       grad_coef};
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    AdamWKernel<T><<<static_cast<unsigned>(chunk_count), kThreads, 0, stream>>>(tensors, chunks, args);
  });
  SLOPE_CHECK_LAUNCH("AdamWKernel");
}

}  // namespace slope::gpu
