// slope's thin-product kernel (see thin_gemm.hpp).
#include "slope/gpu/thin_gemm.hpp"

#include <algorithm>

#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "type_traits.cuh"

namespace slope::gpu {
namespace {

constexpr int kBlockM = 64;    // rows of C per block: 4 warps of 16 rows
constexpr int kBlockK = 64;    // k per pipeline stage: 128-byte rows, eight 16-byte chunks
constexpr int kThreads = 256;  // 8 warps: 4 along m x 2 sharing each stage's four k16 steps
constexpr int kStages = 4;
constexpr int kMaxSplits = 16;

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
__device__ __forceinline__ void store_8(T* dst, const float (&v)[8]) {
  alignas(16) T out[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) out[j] = from_float<T>(v[j]);
  *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(out);
}

template <int kBlockN>
constexpr int shared_bytes() {
  const int pipeline = kStages * (kBlockM + kBlockN) * kBlockK * 2;
  const int reduction = 2 * kBlockM * (kBlockN + 4) * 4;
  return pipeline > reduction ? pipeline : reduction;
}

// Grid (m blocks, k splits). partials: [split][m block][64][kBlockN] fp32; arrivals: one
// counter per m block, zero between launches (the last block resets it).
template <typename T, int kBlockN>
__global__ void __launch_bounds__(kThreads, 2)
    ThinGemmKernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ c, float* __restrict__ partials,
                   unsigned* __restrict__ arrivals, int m, int n, int k, int64_t lda, int64_t ldb, int64_t ldc,
                   int iters_per_split) {
  constexpr int kTilesN = kBlockN / 8;  // 8-column mma tiles, all in every warp
  static_assert(kBlockN % 16 == 0, "ldmatrix.x4 loads the tiles two at a time");
  constexpr int kStageA = kBlockM * kBlockK * 2, kStageB = kBlockN * kBlockK * 2;
  constexpr int kLd = kBlockN + 4;  // floats per row of the reduction tiles (16-byte aligned rows)
  extern __shared__ __align__(128) uint8_t shared[];
  __shared__ bool last_block;
  const uint32_t base = shared_address(shared);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int warp_m = warp & 3, k_group = warp >> 2;  // k_group g takes k16 steps g and g + 2
  const int m0 = blockIdx.x * kBlockM;
  const int k_iters = (k + kBlockK - 1) / kBlockK;
  const int first = blockIdx.y * iters_per_split;
  const int iters = max(0, min(k_iters - first, iters_per_split));

  auto load_stage = [&](int slot, int iter) {
    const int k0 = (first + iter) * kBlockK;
    const uint32_t sa = base + slot * kStageA, sb = base + kStages * kStageA + slot * kStageB;
#pragma unroll
    for (int i = tid; i < kBlockM * 8; i += kThreads) {
      const int row = i >> 3, chunk = i & 7, col = k0 + chunk * 8;
      const bool ok = m0 + row < m && col < k;
      copy_async_16(sa + swizzled(row, chunk), ok ? a + (m0 + row) * lda + col : a, ok);
    }
#pragma unroll
    for (int i = tid; i < kBlockN * 8; i += kThreads) {
      const int row = i >> 3, chunk = i & 7, col = k0 + chunk * 8;
      const bool ok = row < n && col < k;
      copy_async_16(sb + swizzled(row, chunk), ok ? b + row * ldb + col : b, ok);
    }
  };

  float acc[kTilesN][4] = {};
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
    for (int step = 0; step < 2; ++step) {
      const int ks = k_group + 2 * step;
      uint32_t af[4];
      load_matrix_x4(sa + swizzled(warp_m * 16 + (lane & 15), ks * 2 + (lane >> 4)), af);
      uint32_t bf[kTilesN][2];
#pragma unroll
      for (int nj = 0; nj + 1 < kTilesN; nj += 2) {  // two 8-column tiles per ldmatrix.x4
        uint32_t r[4];
        load_matrix_x4(sb + swizzled(nj * 8 + (lane & 7) + ((lane >> 4) << 3), ks * 2 + ((lane >> 3) & 1)), r);
        bf[nj][0] = r[0];
        bf[nj][1] = r[1];
        bf[nj + 1][0] = r[2];
        bf[nj + 1][1] = r[3];
      }
#pragma unroll
      for (int ni = 0; ni < kTilesN; ++ni) mma_16x8x16<T>(acc[ni], af, bf[ni][0], bf[ni][1]);
    }
  }
  copy_async_wait<0>();
  __syncthreads();  // the pipeline's shared memory becomes the two k groups' tiles

  float* tiles = reinterpret_cast<float*>(shared);  // [k group][64][kLd]
#pragma unroll
  for (int ni = 0; ni < kTilesN; ++ni) {
    float* t = tiles + k_group * kBlockM * kLd;
    const int row = warp_m * 16 + (lane >> 2), col = ni * 8 + (lane & 3) * 2;
    *reinterpret_cast<float2*>(t + row * kLd + col) = make_float2(acc[ni][0], acc[ni][1]);
    *reinterpret_cast<float2*>(t + (row + 8) * kLd + col) = make_float2(acc[ni][2], acc[ni][3]);
  }
  __syncthreads();
  constexpr int kChunks = kBlockN / 8;  // 8-value chunks per row of the tile
  const int splits = static_cast<int>(gridDim.y);
  if (splits == 1) {
    for (int i = tid; i < kBlockM * kChunks; i += kThreads) {
      const int row = i / kChunks, col = (i % kChunks) * 8;
      if (m0 + row >= m || col >= n) continue;
      float v[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = tiles[row * kLd + col + j] + tiles[(kBlockM + row) * kLd + col + j];
      store_8(c + (m0 + row) * ldc + col, v);
    }
    return;
  }
  // This block's partial tile to the workspace (kept in L2: __stcg), then count arrivals.
  float* mine = partials + (static_cast<size_t>(blockIdx.y) * gridDim.x + blockIdx.x) * kBlockM * kBlockN;
  for (int i = tid; i < kBlockM * kBlockN / 4; i += kThreads) {
    const int row = i / (kBlockN / 4), col = (i % (kBlockN / 4)) * 4;
    const float4 x = *reinterpret_cast<const float4*>(tiles + row * kLd + col);
    const float4 y = *reinterpret_cast<const float4*>(tiles + (kBlockM + row) * kLd + col);
    __stcg(reinterpret_cast<float4*>(mine + row * kBlockN + col), make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w));
  }
  __threadfence();  // the partial tile is visible device-wide before this block counts itself
  __syncthreads();
  if (tid == 0) last_block = atomicAdd(arrivals + blockIdx.x, 1u) == static_cast<unsigned>(splits - 1);
  __syncthreads();
  if (!last_block) return;
  __threadfence();
  // The last block adds every split's tile in split order (deterministic) and writes C.
  for (int i = tid; i < kBlockM * kChunks; i += kThreads) {
    const int row = i / kChunks, col = (i % kChunks) * 8;
    if (m0 + row >= m || col >= n) continue;
    float v[8] = {};
    for (int q = 0; q < splits; ++q) {
      const float* p =
          partials + (static_cast<size_t>(q) * gridDim.x + blockIdx.x) * kBlockM * kBlockN + row * kBlockN + col;
      const float4 lo = __ldcg(reinterpret_cast<const float4*>(p)), hi = __ldcg(reinterpret_cast<const float4*>(p + 4));
      v[0] += lo.x, v[1] += lo.y, v[2] += lo.z, v[3] += lo.w;
      v[4] += hi.x, v[5] += hi.y, v[6] += hi.z, v[7] += hi.w;
    }
    store_8(c + (m0 + row) * ldc + col, v);
  }
  if (tid == 0) arrivals[blockIdx.x] = 0;  // every other block of this row range has counted
}

template <typename T, int kBlockN>
void launch(const ThinGemmShape& s, int splits, float* partials, unsigned* arrivals, const void* a, const void* b,
            void* c, cudaStream_t stream) {
  auto* kernel = ThinGemmKernel<T, kBlockN>;
  constexpr int kShared = shared_bytes<kBlockN>();
  // Above 48 KiB dynamic shared memory must be allowed per kernel, once.
  static const cudaError_t allowed =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kShared);
  SLOPE_CHECK(allowed);
  const int k_iters = static_cast<int>((s.k + kBlockK - 1) / kBlockK);
  const dim3 grid(static_cast<unsigned>((s.m + kBlockM - 1) / kBlockM), static_cast<unsigned>(splits));
  kernel<<<grid, kThreads, kShared, stream>>>(static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(c),
                                              partials, arrivals, static_cast<int>(s.m), static_cast<int>(s.n),
                                              static_cast<int>(s.k), s.lda, s.ldb, s.ldc,
                                              (k_iters + splits - 1) / splits);
  SLOPE_CHECK_LAUNCH("ThinGemmKernel");
}

}  // namespace

ThinGemm::ThinGemm(const ThinGemmShape& s, int sm_count, int k_splits) : shape_(s) {
  require(s.m > 0 && s.n > 0 && s.k > 0, "thin_gemm: empty shape");
  require(s.m < (int64_t{1} << 31) && s.k < (int64_t{1} << 31), "thin_gemm: a dimension does not fit in 32 bits");
  require(s.n <= 128, "thin_gemm: n must be at most 128 (a thin product)");
  require(s.n % 8 == 0 && s.k % 8 == 0, "thin_gemm: n and k must be multiples of 8 (16-byte rows)");
  require(s.lda >= s.k && s.ldb >= s.k && s.ldc >= s.n, "thin_gemm: a leading dimension is below its row length");
  require(s.lda % 8 == 0 && s.ldb % 8 == 0 && s.ldc % 8 == 0,
          "thin_gemm: leading dimensions must be multiples of 8 (16-byte aligned rows)");
  require(s.dtype == DType::kF16 || s.dtype == DType::kBF16, "thin_gemm: needs fp16 or bf16");
  require(k_splits == 0 || k_splits == 1 || k_splits == 2 || k_splits == 4 || k_splits == 8 || k_splits == 16,
          "thin_gemm: k splits must be 1, 2, 4, 8 or 16");
  block_n_ = static_cast<int>((s.n + 15) / 16 * 16);
  const int64_t m_blocks = (s.m + kBlockM - 1) / kBlockM, k_iters = (s.k + kBlockK - 1) / kBlockK;
  k_splits_ = k_splits;
  if (k_splits_ == 0) {  // about two blocks per SM, each with at least four k slices
    k_splits_ = 1;
    while (k_splits_ < kMaxSplits && m_blocks * k_splits_ * 2 <= 2 * int64_t{sm_count} &&
           k_splits_ * 4 <= k_iters)
      k_splits_ *= 2;
  }
  if (k_splits_ > 1) {
    partials_ = DeviceBuffer(static_cast<size_t>(k_splits_ * m_blocks * kBlockM * block_n_) * sizeof(float));
    arrivals_ = DeviceBuffer(static_cast<size_t>(m_blocks) * sizeof(unsigned));
    SLOPE_CHECK(cudaMemset(arrivals_.get(), 0, arrivals_.bytes()));
    SLOPE_CHECK(cudaDeviceSynchronize());  // zero before any stream's first call
  }
}

void ThinGemm::run(const void* a, const void* b, void* c, cudaStream_t stream) const {
  require(a != nullptr && b != nullptr && c != nullptr, "thin_gemm: null operand");
  float* partials = partials_.as<float>();
  auto* arrivals = arrivals_.as<unsigned>();
  dispatch_16bit(shape_.dtype, [&](auto zero) {
    using T = decltype(zero);
    switch (block_n_) {
      case 16: return launch<T, 16>(shape_, k_splits_, partials, arrivals, a, b, c, stream);
      case 32: return launch<T, 32>(shape_, k_splits_, partials, arrivals, a, b, c, stream);
      case 48: return launch<T, 48>(shape_, k_splits_, partials, arrivals, a, b, c, stream);
      case 64: return launch<T, 64>(shape_, k_splits_, partials, arrivals, a, b, c, stream);
      case 80: return launch<T, 80>(shape_, k_splits_, partials, arrivals, a, b, c, stream);
      case 96: return launch<T, 96>(shape_, k_splits_, partials, arrivals, a, b, c, stream);
      case 112: return launch<T, 112>(shape_, k_splits_, partials, arrivals, a, b, c, stream);
      default: return launch<T, 128>(shape_, k_splits_, partials, arrivals, a, b, c, stream);
    }
  });
}

}  // namespace slope::gpu
