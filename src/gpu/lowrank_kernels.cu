// Thin-product kernels of the low-rank adapter on tensor cores (WMMA, fp32 accumulation).
// Both are memory bound: the design goal is to keep every SM streaming, not to save flops.
#include <cuda_pipeline.h>
#include <mma.h>

#include <string>

#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/lowrank_kernels.hpp"
#include "type_traits.cuh"

namespace slope::gpu {
namespace {

namespace wmma = nvcuda::wmma;

constexpr int kTileTokens = 128;  // tokens per block: 8 warps of 16 rows
constexpr int kThreads = 256;
constexpr int kPad = 8;           // 16-bit elements of padding per shared row (spreads banks, keeps 16 B alignment)
constexpr int kStep = 64;         // d_in per pipeline stage of the down kernel
constexpr int kStages = 3;        // its cp.async pipeline depth
constexpr int kUpCols = 128;      // output features per block of the up kernel

// Copies 16 bytes global -> shared without passing through registers (cp.async).
__device__ __forceinline__ void copy16(void* shared, const void* global) {
  __pipeline_memcpy_async(shared, global, 16);
}

__device__ __forceinline__ void zero16(void* shared) { *reinterpret_cast<uint4*>(shared) = make_uint4(0, 0, 0, 0); }

// t32 += X[row0:row0+128, k_begin:k_end] L[k_begin:k_end, :]: one block per (token tile,
// slice of d_in), a kStages-deep pipeline over kStep-wide steps of the slice, then the
// block's partial sums added into t32 (16 bytes per atomic).
template <typename T, int Frags>
__global__ void __launch_bounds__(kThreads) LowRankDownKernel(const T* x, const T* l, float* t32, int tokens,
                                                              int d_in, int slice) {
  constexpr int rank = Frags * 16;
  constexpr int x_ld = kStep + kPad, l_ld = rank + kPad;
  constexpr int x_stage = kTileTokens * x_ld, l_stage = kStep * l_ld;
  extern __shared__ __align__(128) unsigned char smem[];
  T* xs = reinterpret_cast<T*>(smem);
  T* ls = xs + kStages * x_stage;
  float* staging = reinterpret_cast<float*>(ls + kStages * l_stage);  // 16 x 16 fp32 per warp

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row0 = blockIdx.x * kTileTokens;
  const int k_begin = blockIdx.y * slice;
  const int k_end = min(k_begin + slice, d_in);
  const int steps = (k_end - k_begin + kStep - 1) / kStep;

  // Stage s <- step i: X's 128 x 64 tile and L's 64 x rank tile; zeros past the slice or
  // the last token, so every step computes a full tile.
  auto load = [&](int i, int s) {
    const int k0 = k_begin + i * kStep;
    T* xd = xs + s * x_stage;
    for (int v = threadIdx.x; v < kTileTokens * (kStep / 8); v += kThreads) {
      const int row = v / (kStep / 8), col = v % (kStep / 8) * 8;
      T* dst = xd + row * x_ld + col;
      if (row0 + row < tokens && k0 + col < k_end)
        copy16(dst, x + static_cast<int64_t>(row0 + row) * d_in + k0 + col);
      else
        zero16(dst);
    }
    T* ld = ls + s * l_stage;
    for (int v = threadIdx.x; v < kStep * (rank / 8); v += kThreads) {
      const int row = v / (rank / 8), col = v % (rank / 8) * 8;
      T* dst = ld + row * l_ld + col;
      if (k0 + row < k_end)
        copy16(dst, l + static_cast<int64_t>(k0 + row) * rank + col);
      else
        zero16(dst);
    }
  };

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[Frags];
#pragma unroll
  for (int f = 0; f < Frags; ++f) wmma::fill_fragment(acc[f], 0.0f);

  for (int s = 0; s < kStages - 1; ++s) {
    if (s < steps) load(s, s);
    __pipeline_commit();  // empty batches keep the wait count below uniform
  }
  for (int i = 0; i < steps; ++i) {
    __pipeline_wait_prior(kStages - 2);
    __syncthreads();  // step i has landed for everyone; step i-1's stage is free
    if (i + kStages - 1 < steps) load(i + kStages - 1, (i + kStages - 1) % kStages);
    __pipeline_commit();
    const T* xt = xs + (i % kStages) * x_stage + warp * 16 * x_ld;
    const T* lt = ls + (i % kStages) * l_stage;
#pragma unroll
    for (int k = 0; k < kStep; k += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
      wmma::load_matrix_sync(a, xt + k, x_ld);
#pragma unroll
      for (int f = 0; f < Frags; ++f) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b;
        wmma::load_matrix_sync(b, lt + k * l_ld + f * 16, l_ld);
        wmma::mma_sync(acc[f], a, b, acc[f]);
      }
    }
  }

  // Partial sums out: one 16 x 16 fragment at a time through the warp's staging square.
  float* mine = staging + warp * 256;
  const int base_row = row0 + warp * 16;
#pragma unroll
  for (int f = 0; f < Frags; ++f) {
    wmma::store_matrix_sync(mine, acc[f], 16, wmma::mem_row_major);
    __syncwarp();
    for (int v = lane; v < 64; v += 32) {  // 64 groups of 4 floats
      const int row = v / 4, col = v % 4 * 4;
      if (base_row + row < tokens) {
        float* dst = t32 + static_cast<int64_t>(base_row + row) * rank + f * 16 + col;
        const float4 add = *reinterpret_cast<const float4*>(mine + row * 16 + col);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
        atomicAdd(reinterpret_cast<float4*>(dst), add);
#else
        atomicAdd(dst, add.x);
        atomicAdd(dst + 1, add.y);
        atomicAdd(dst + 2, add.z);
        atomicAdd(dst + 3, add.w);
#endif
      }
    }
    __syncwarp();
  }
}

// Y[row0:row0+128, c0:c0+128] = T R: T's rows rounded to 16 bits into shared memory with R's
// column slice, 8 warps of 16 rows x 128 columns, each result fragment written straight out
// (16 rows x 32 bytes per store instruction).
template <typename T, int Frags>
__global__ void __launch_bounds__(kThreads) LowRankUpKernel(const float* t32, const T* r, T* y, int tokens,
                                                            int d_out) {
  constexpr int rank = Frags * 16;
  constexpr int t_ld = rank + kPad, r_ld = kUpCols + kPad;
  extern __shared__ __align__(128) unsigned char smem[];
  T* ts = reinterpret_cast<T*>(smem);
  T* rs = ts + kTileTokens * t_ld;
  float* staging = reinterpret_cast<float*>(rs + rank * r_ld);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row0 = blockIdx.x * kTileTokens, c0 = blockIdx.y * kUpCols;
  const int cols = min(kUpCols, d_out - c0);  // a multiple of 16

  for (int v = threadIdx.x; v < kTileTokens * (rank / 4); v += kThreads) {
    const int row = v / (rank / 4), col = v % (rank / 4) * 4;
    float4 in = make_float4(0.f, 0.f, 0.f, 0.f);
    if (row0 + row < tokens) in = *reinterpret_cast<const float4*>(t32 + static_cast<int64_t>(row0 + row) * rank + col);
    T* dst = ts + row * t_ld + col;
    dst[0] = from_float<T>(in.x);
    dst[1] = from_float<T>(in.y);
    dst[2] = from_float<T>(in.z);
    dst[3] = from_float<T>(in.w);
  }
  for (int v = threadIdx.x; v < rank * (kUpCols / 8); v += kThreads) {
    const int row = v / (kUpCols / 8), col = v % (kUpCols / 8) * 8;
    T* dst = rs + row * r_ld + col;
    if (col < cols)
      copy16(dst, r + static_cast<int64_t>(row) * d_out + c0 + col);
    else
      zero16(dst);
  }
  __pipeline_commit();
  __pipeline_wait_prior(0);
  __syncthreads();

  wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a[Frags];
#pragma unroll
  for (int k = 0; k < Frags; ++k) wmma::load_matrix_sync(a[k], ts + warp * 16 * t_ld + k * 16, t_ld);
  float* mine = staging + warp * 256;
  const int base_row = row0 + warp * 16;
  for (int f = 0; f < cols / 16; ++f) {
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
#pragma unroll
    for (int k = 0; k < Frags; ++k) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b;
      wmma::load_matrix_sync(b, rs + k * 16 * r_ld + f * 16, r_ld);
      wmma::mma_sync(acc, a[k], b, acc);
    }
    wmma::store_matrix_sync(mine, acc, 16, wmma::mem_row_major);
    __syncwarp();
    const int row = lane / 2, half = lane % 2 * 8;  // each lane: 8 outputs, 16 bytes
    if (base_row + row < tokens) {
      union {
        uint4 raw;
        T v[8];
      } out;
#pragma unroll
      for (int j = 0; j < 8; ++j) out.v[j] = from_float<T>(mine[row * 16 + half + j]);
      *reinterpret_cast<uint4*>(y + static_cast<int64_t>(base_row + row) * d_out + c0 + f * 16 + half) = out.raw;
    }
    __syncwarp();
  }
}

void check_thin(const char* what, int64_t tokens, int64_t rank, int64_t width, const void* a, const void* b,
                const void* c) {
  require(tokens > 0 && rank > 0 && width > 0, std::string(what) + ": empty operand");
  require(rank % 16 == 0 && rank <= kMaxThinRank,
          std::string(what) + ": rank " + std::to_string(rank) + " must be a multiple of 16 and at most " +
              std::to_string(kMaxThinRank));
  require(width % 16 == 0, std::string(what) + ": hidden size " + std::to_string(width) +
                               " must be a multiple of 16");
  for (const void* p : {a, b, c})
    require(reinterpret_cast<uintptr_t>(p) % 16 == 0, std::string(what) + ": operands must be 16-byte aligned");
}

// Calls f(std::integral_constant<int, Frags>) for rank = 16 * Frags.
template <typename F>
void dispatch_frags(int64_t rank, F&& f) {
  switch (rank / 16) {
    case 1: f(std::integral_constant<int, 1>{}); return;
    case 2: f(std::integral_constant<int, 2>{}); return;
    case 3: f(std::integral_constant<int, 3>{}); return;
    case 4: f(std::integral_constant<int, 4>{}); return;
    case 5: f(std::integral_constant<int, 5>{}); return;
    case 6: f(std::integral_constant<int, 6>{}); return;
    case 7: f(std::integral_constant<int, 7>{}); return;
    case 8: f(std::integral_constant<int, 8>{}); return;
    default: break;
  }
  throw Error(ErrorKind::kInvalidInput, "low-rank kernels: unsupported rank " + std::to_string(rank));
}

// Allows a kernel more than 48 KB of dynamic shared memory. Called once per kernel (from a
// function-local static at its first launch, which is eager in every use here).
template <typename Kernel>
bool allow_shared(Kernel kernel, size_t bytes) {
  SLOPE_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  return true;
}

int current_sm_count() {
  int device = 0, count = 0;
  SLOPE_CHECK(cudaGetDevice(&device));
  SLOPE_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count;
}

}  // namespace

void lowrank_down(const void* x, const void* l, float* t32, int64_t tokens, int64_t d_in, int64_t rank,
                  DType dtype, cudaStream_t stream) {
  check_thin("lowrank_down", tokens, rank, d_in, x, l, t32);
  // Slices of d_in so that every SM gets about one block: enough bytes in flight through its
  // pipeline to stream X, while the partial sums (2 r / slice of X's bytes, added at the
  // blocks' end) stay few.
  const int64_t tiles = (tokens + kTileTokens - 1) / kTileTokens;
  const int64_t want = std::max<int64_t>(1, current_sm_count() / tiles);
  int64_t slice = (d_in + want - 1) / want;
  slice = std::max<int64_t>(kStep, (slice + kStep - 1) / kStep * kStep);
  const int64_t slices = (d_in + slice - 1) / slice;
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    dispatch_frags(rank, [&](auto frags) {
      constexpr int F = decltype(frags)::value;
      const size_t shared = sizeof(T) * kStages * (kTileTokens * (kStep + kPad) + kStep * (F * 16 + kPad)) +
                            sizeof(float) * 256 * (kThreads / 32);
      static const bool allowed = allow_shared(LowRankDownKernel<T, F>, shared);
      (void)allowed;
      LowRankDownKernel<T, F><<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(slices)), kThreads, shared,
                                 stream>>>(static_cast<const T*>(x), static_cast<const T*>(l), t32,
                                           static_cast<int>(tokens), static_cast<int>(d_in), static_cast<int>(slice));
    });
  });
  SLOPE_CHECK_LAUNCH("LowRankDownKernel");
}

void lowrank_up(const float* t32, const void* r, void* y, int64_t tokens, int64_t rank, int64_t d_out, DType dtype,
                cudaStream_t stream) {
  check_thin("lowrank_up", tokens, rank, d_out, t32, r, y);
  const int64_t tiles = (tokens + kTileTokens - 1) / kTileTokens;
  const int64_t col_tiles = (d_out + kUpCols - 1) / kUpCols;
  dispatch_16bit(dtype, [&](auto tag) {
    using T = decltype(tag);
    dispatch_frags(rank, [&](auto frags) {
      constexpr int F = decltype(frags)::value;
      const size_t shared = sizeof(T) * (kTileTokens * (F * 16 + kPad) + F * 16 * (kUpCols + kPad)) +
                            sizeof(float) * 256 * (kThreads / 32);
      static const bool allowed = allow_shared(LowRankUpKernel<T, F>, shared);
      (void)allowed;
      LowRankUpKernel<T, F><<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(col_tiles)), kThreads, shared,
                               stream>>>(t32, static_cast<const T*>(r), static_cast<T*>(y), static_cast<int>(tokens),
                                         static_cast<int>(d_out));
    });
  });
  SLOPE_CHECK_LAUNCH("LowRankUpKernel");
}

void lowrank_product(const void* x, const void* l, const void* r, float* t32, void* y, int64_t tokens,
                     int64_t d_in, int64_t rank, int64_t d_out, DType dtype, cudaStream_t stream) {
  SLOPE_CHECK(cudaMemsetAsync(t32, 0, static_cast<size_t>(tokens * rank) * sizeof(float), stream));
  lowrank_down(x, l, t32, tokens, d_in, rank, dtype, stream);
  lowrank_up(t32, r, y, tokens, rank, d_out, dtype, stream);
}

}  // namespace slope::gpu
