// slope's GEMM for the low-rank adapter's thin and wide products (see low_rank_gemm.hpp).
#include "slope/gpu/low_rank_gemm.hpp"

#include <cooperative_groups.h>

#include <algorithm>

#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "type_traits.cuh"

namespace slope::gpu {
namespace {

namespace cg = cooperative_groups;

constexpr int kBlockM = 128;  // rows of C per block: 4 warps of 32 rows
constexpr int kBlockK = 64;   // k per pipeline stage: 128-byte rows, eight 16-byte chunks
constexpr int kThreads = 256; // 8 warps: 4 along m x 2 along n
constexpr int kOneBlockPerSm = 120 * 1024;  // more than half of an H100/H200 SM's 227 KiB

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared without passing through registers; `valid` false fills zeros
// (rows past m or n, columns past k).
__device__ __forceinline__ void copy_async_16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void copy_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void copy_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

__device__ __forceinline__ void load_matrix_x4(uint32_t address, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ __forceinline__ void load_matrix_x2(uint32_t address, uint32_t& r0, uint32_t& r1) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r0), "=r"(r1) : "r"(address));
}

// d += a b for one 16 x 8 x 16 tile, fp32 accumulation.
template <typename T>
__device__ __forceinline__ void mma_16x8x16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma_16x8x16<__half>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma_16x8x16<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                           uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Byte offset of 16-byte chunk `chunk` of row `row` in a stage tile of 64-element rows. The
// chunk index is XORed with the row so that the eight rows one ldmatrix reads (same logical
// chunk) fall in eight different bank groups.
__device__ __forceinline__ uint32_t swizzled(int row, int chunk) {
  return static_cast<uint32_t>(row * kBlockK * 2 + ((chunk ^ (row & 7)) << 4));
}

template <typename T>
__device__ __forceinline__ void store_pair(T* dst, float lo, float hi) {
  alignas(4) T pair[2] = {from_float<T>(lo), from_float<T>(hi)};
  *reinterpret_cast<uint32_t*>(dst) = *reinterpret_cast<const uint32_t*>(pair);
}

template <int kBlockN, int kStages>
constexpr int shared_bytes() {
  const int pipeline = kStages * (kBlockM + kBlockN) * kBlockK * 2;
  const int reduction = kBlockM * (kBlockN + 4) * 4;
  return pipeline > reduction ? pipeline : reduction;
}

// Grid (m blocks, n blocks, k splits), clusters of (1, 1, k splits): the blocks of one
// cluster share an output tile and each multiplies its own run of k slices.
template <typename T, int kBlockN, int kStages>
__global__ void __launch_bounds__(kThreads, 2)
    LowRankGemmKernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ c, int m, int n, int k,
                      int64_t lda, int64_t ldb, int64_t ldc, int iters_per_split, bool direct_store) {
  constexpr int kWarpN = kBlockN / 2;  // columns per warp
  constexpr int kTilesN = kWarpN / 8;  // 8-column mma tiles per warp
  constexpr int kStageA = kBlockM * kBlockK * 2, kStageB = kBlockN * kBlockK * 2;
  constexpr int kReductionLd = kBlockN + 4;  // floats; rows stay 16-byte aligned
  extern __shared__ __align__(128) uint8_t shared[];
  const uint32_t base = shared_address(shared);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int warp_m = warp & 3, warp_n = warp >> 2;
  const int m0 = blockIdx.x * kBlockM, n0 = blockIdx.y * kBlockN;
  const int k_iters = (k + kBlockK - 1) / kBlockK;
  const int first = blockIdx.z * iters_per_split;
  const int iters = max(0, min(k_iters - first, iters_per_split));

  auto load_stage = [&](int slot, int iter) {
    const int k0 = (first + iter) * kBlockK;
    const uint32_t sa = base + slot * kStageA, sb = base + kStages * kStageA + slot * kStageB;
    for (int i = tid; i < kBlockM * 8; i += kThreads) {
      const int row = i >> 3, chunk = i & 7, col = k0 + chunk * 8;
      const bool ok = m0 + row < m && col < k;
      copy_async_16(sa + swizzled(row, chunk), ok ? a + (m0 + row) * lda + col : a, ok);
    }
    for (int i = tid; i < kBlockN * 8; i += kThreads) {
      const int row = i >> 3, chunk = i & 7, col = k0 + chunk * 8;
      const bool ok = n0 + row < n && col < k;
      copy_async_16(sb + swizzled(row, chunk), ok ? b + (n0 + row) * ldb + col : b, ok);
    }
  };

  float acc[2][kTilesN][4] = {};
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < iters) load_stage(s, s);
    copy_async_commit();
  }
  for (int it = 0; it < iters; ++it) {
    copy_async_wait<kStages - 2>();
    __syncthreads();  // stage `it` landed for every thread; the slot refilled below is free
    const int next = it + kStages - 1;
    if (next < iters) load_stage(next % kStages, next);
    copy_async_commit();
    const int slot = it % kStages;
    const uint32_t sa = base + slot * kStageA, sb = base + kStages * kStageA + slot * kStageB;
#pragma unroll
    for (int ks = 0; ks < kBlockK / 16; ++ks) {
      uint32_t af[2][4];
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
        load_matrix_x4(sa + swizzled(warp_m * 32 + mi * 16 + (lane & 15), ks * 2 + (lane >> 4)), af[mi]);
      uint32_t bf[kTilesN][2];
#pragma unroll
      for (int nj = 0; nj + 1 < kTilesN; nj += 2) {  // two 8-column tiles per ldmatrix.x4
        uint32_t r[4];
        load_matrix_x4(sb + swizzled(warp_n * kWarpN + nj * 8 + (lane & 7) + ((lane >> 4) << 3),
                                     ks * 2 + ((lane >> 3) & 1)),
                       r);
        bf[nj][0] = r[0];
        bf[nj][1] = r[1];
        bf[nj + 1][0] = r[2];
        bf[nj + 1][1] = r[3];
      }
      if constexpr (kTilesN % 2 == 1)
        load_matrix_x2(sb + swizzled(warp_n * kWarpN + (kTilesN - 1) * 8 + (lane & 7), ks * 2 + ((lane >> 3) & 1)),
                       bf[kTilesN - 1][0], bf[kTilesN - 1][1]);
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < kTilesN; ++ni) mma_16x8x16<T>(acc[mi][ni], af[mi], bf[ni][0], bf[ni][1]);
    }
  }
  copy_async_wait<0>();
  __syncthreads();  // the pipeline's shared memory becomes the reduction tile

  if (direct_store) {
    // One block per tile: each thread writes its fragments' pairs straight from registers.
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
      for (int ni = 0; ni < kTilesN; ++ni) {
        const int row = m0 + warp_m * 32 + mi * 16 + (lane >> 2);
        const int col = n0 + warp_n * kWarpN + ni * 8 + (lane & 3) * 2;
        if (col >= n) continue;
        if (row < m) store_pair(c + row * ldc + col, acc[mi][ni][0], acc[mi][ni][1]);
        if (row + 8 < m) store_pair(c + (row + 8) * ldc + col, acc[mi][ni][2], acc[mi][ni][3]);
      }
    return;
  }
  // Each block's fp32 tile into its shared memory; then block `rank` of the cluster adds
  // rows [rank, rank + 1) * 128 / splits of every block's tile, in rank order
  // (deterministic), and writes them as 16-byte chunks of C's rows.
  float* tile = reinterpret_cast<float*>(shared);
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int ni = 0; ni < kTilesN; ++ni) {
      const int row = warp_m * 32 + mi * 16 + (lane >> 2), col = warp_n * kWarpN + ni * 8 + (lane & 3) * 2;
      *reinterpret_cast<float2*>(tile + row * kReductionLd + col) = make_float2(acc[mi][ni][0], acc[mi][ni][1]);
      *reinterpret_cast<float2*>(tile + (row + 8) * kReductionLd + col) = make_float2(acc[mi][ni][2], acc[mi][ni][3]);
    }
  const bool clustered = gridDim.z > 1;  // launched in clusters only when k is split
  cg::cluster_group cluster = cg::this_cluster();
  if (clustered)
    cluster.sync();
  else
    __syncthreads();
  const int splits = clustered ? static_cast<int>(cluster.num_blocks()) : 1;
  const int rank = clustered ? static_cast<int>(cluster.block_rank()) : 0;
  const int rows = kBlockM / splits;
  constexpr int kChunks = kBlockN / 8;
  for (int i = tid; i < rows * kChunks; i += kThreads) {
    const int row = rank * rows + i / kChunks, chunk = i % kChunks;
    float sum[8] = {};
    for (int q = 0; q < splits; ++q) {
      const float* src = (clustered ? cluster.map_shared_rank(tile, q) : tile) + row * kReductionLd + chunk * 8;
      const float4 lo = *reinterpret_cast<const float4*>(src), hi = *reinterpret_cast<const float4*>(src + 4);
      sum[0] += lo.x, sum[1] += lo.y, sum[2] += lo.z, sum[3] += lo.w;
      sum[4] += hi.x, sum[5] += hi.y, sum[6] += hi.z, sum[7] += hi.w;
    }
    const int gm = m0 + row, gn = n0 + chunk * 8;
    if (gm < m && gn < n) {
      alignas(16) T out[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) out[j] = from_float<T>(sum[j]);
      *reinterpret_cast<uint4*>(c + gm * ldc + gn) = *reinterpret_cast<const uint4*>(out);
    }
  }
  if (clustered) cluster.sync();  // no block leaves while another still reads its tile
}

template <typename T, int kBlockN, int kStages>
void launch(const LowRankGemmShape& s, const LowRankGemmPlan& p, const void* a, const void* b, void* c,
            cudaStream_t stream) {
  auto* kernel = LowRankGemmKernel<T, kBlockN, kStages>;
  // A cluster's blocks must sit on distinct SMs, or the scheduler packs the clusters onto
  // half the GPU: with k split, each block asks for more than half an SM's shared memory.
  constexpr int kShared = shared_bytes<kBlockN, kStages>();
  constexpr int kSharedAlone = kShared > kOneBlockPerSm ? kShared : kOneBlockPerSm;
  const int shared_bytes_used = p.k_splits > 1 ? kSharedAlone : kShared;
  // Above 48 KiB dynamic shared memory must be allowed per kernel, once.
  static const cudaError_t allowed =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSharedAlone);
  SLOPE_CHECK(allowed);
  const int k_iters = static_cast<int>((s.k + kBlockK - 1) / kBlockK);
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>((s.m + kBlockM - 1) / kBlockM),
                        static_cast<unsigned>((s.n + kBlockN - 1) / kBlockN), static_cast<unsigned>(p.k_splits));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = static_cast<size_t>(shared_bytes_used);
  config.stream = stream;
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = 1;
  cluster.val.clusterDim.y = 1;
  cluster.val.clusterDim.z = static_cast<unsigned>(p.k_splits);
  config.attrs = &cluster;
  config.numAttrs = p.k_splits > 1 ? 1 : 0;
  SLOPE_CHECK(cudaLaunchKernelEx(&config, kernel, static_cast<const T*>(a), static_cast<const T*>(b),
                                 static_cast<T*>(c), static_cast<int>(s.m), static_cast<int>(s.n),
                                 static_cast<int>(s.k), s.lda, s.ldb, s.ldc,
                                 (k_iters + p.k_splits - 1) / p.k_splits, p.direct_store));
}

// Two pipeline stages where a block multiplies at most two k slices (the wide product):
// half the shared memory, so that two blocks share an SM and one's writes overlap the
// other's loads.
template <typename T, int kBlockN>
void launch_staged(const LowRankGemmShape& s, const LowRankGemmPlan& p, const void* a, const void* b, void* c,
                   cudaStream_t stream) {
  const int64_t k_iters = (s.k + kBlockK - 1) / kBlockK;
  if ((k_iters + p.k_splits - 1) / p.k_splits <= 2)
    launch<T, kBlockN, 2>(s, p, a, b, c, stream);
  else
    launch<T, kBlockN, 4>(s, p, a, b, c, stream);
}

}  // namespace

LowRankGemmPlan plan_low_rank_gemm(const LowRankGemmShape& shape, int sm_count) {
  LowRankGemmPlan p;
  p.block_n = shape.n <= 128 ? static_cast<int>((shape.n + 15) / 16 * 16) : 128;
  const int64_t blocks = ((shape.m + kBlockM - 1) / kBlockM) * ((shape.n + p.block_n - 1) / p.block_n);
  const int64_t k_iters = (shape.k + kBlockK - 1) / kBlockK;
  p.k_splits = 1;
  while (p.k_splits < 8 && blocks * p.k_splits * 2 <= sm_count && p.k_splits * 2 <= k_iters) p.k_splits *= 2;
  p.direct_store = p.k_splits == 1;
  return p;
}

void validate(const LowRankGemmShape& s, const LowRankGemmPlan& p) {
  require(s.m > 0 && s.n > 0 && s.k > 0, "low_rank_gemm: empty shape");
  require(s.m < (int64_t{1} << 31) && s.n < (int64_t{1} << 31) && s.k < (int64_t{1} << 31),
          "low_rank_gemm: a dimension does not fit in 32 bits");
  require(s.n % 8 == 0 && s.k % 8 == 0, "low_rank_gemm: n and k must be multiples of 8 (16-byte rows)");
  require(s.lda >= s.k && s.ldb >= s.k && s.ldc >= s.n, "low_rank_gemm: a leading dimension is below its row length");
  require(s.lda % 8 == 0 && s.ldb % 8 == 0 && s.ldc % 8 == 0,
          "low_rank_gemm: leading dimensions must be multiples of 8 (16-byte aligned rows)");
  require(s.dtype == DType::kF16 || s.dtype == DType::kBF16, "low_rank_gemm: needs fp16 or bf16");
  require(p.block_n >= 16 && p.block_n <= 128 && p.block_n % 16 == 0,
          "low_rank_gemm: block width must be a multiple of 16 up to 128");
  require(p.k_splits == 1 || p.k_splits == 2 || p.k_splits == 4 || p.k_splits == 8,
          "low_rank_gemm: k splits must be 1, 2, 4 or 8");
  require(!p.direct_store || p.k_splits == 1, "low_rank_gemm: a split product cannot store from registers");
  require((s.m + kBlockM - 1) / kBlockM < (int64_t{1} << 31) && (s.n + p.block_n - 1) / p.block_n <= 65535,
          "low_rank_gemm: too many blocks along n");
}

void low_rank_gemm(const LowRankGemmShape& shape, const LowRankGemmPlan& plan, const void* a, const void* b, void* c,
                   cudaStream_t stream) {
  validate(shape, plan);
  require(a != nullptr && b != nullptr && c != nullptr, "low_rank_gemm: null operand");
  dispatch_16bit(shape.dtype, [&](auto zero) {
    using T = decltype(zero);
    switch (plan.block_n) {
      case 16: return launch_staged<T, 16>(shape, plan, a, b, c, stream);
      case 32: return launch_staged<T, 32>(shape, plan, a, b, c, stream);
      case 48: return launch_staged<T, 48>(shape, plan, a, b, c, stream);
      case 64: return launch_staged<T, 64>(shape, plan, a, b, c, stream);
      case 80: return launch_staged<T, 80>(shape, plan, a, b, c, stream);
      case 96: return launch_staged<T, 96>(shape, plan, a, b, c, stream);
      case 112: return launch_staged<T, 112>(shape, plan, a, b, c, stream);
      default: return launch_staged<T, 128>(shape, plan, a, b, c, stream);
    }
  });
}

}  // namespace slope::gpu
