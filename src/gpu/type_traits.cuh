// fp16/bf16 helpers shared by the kernels: conversion and a dtype -> element type dispatch.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "slope/core/dtype.hpp"
#include "slope/core/error.hpp"

namespace slope::gpu {

__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_float(float v) { return v; }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// Magnitude for ranking, with NaN above every number (the CPU reference's rule).
__device__ __forceinline__ float rank_magnitude(float v) { return isnan(v) ? INFINITY : fabsf(v); }

// Calls f(T{}) with T = __half or __nv_bfloat16.
template <typename F>
void dispatch_16bit(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kF16: f(__half{}); return;
    case DType::kBF16: f(__nv_bfloat16{}); return;
    case DType::kF32: break;
  }
  throw Error(ErrorKind::kInvalidInput, "this GPU operation needs fp16 or bf16 data");
}

}  // namespace slope::gpu
