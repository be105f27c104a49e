// slope's thin-product kernel (see thin_product.hpp for what and why).
#include <cooperative_groups.h>
#include <mma.h>

#include <string>

#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/thin_product.hpp"
#include "type_traits.cuh"

namespace slope::gpu {
namespace {

namespace cg = cooperative_groups;
using namespace nvcuda;

constexpr int kTokens = 128;     // tokens per block (columns of T^T)
constexpr int kDepth = 64;       // rows of X^T (the K dimension) per pipeline stage
constexpr int kStages = 4;       // stages in flight: ~30 KB of X^T per SM, what HBM latency needs
constexpr int kCluster = 8;      // blocks sharing a token tile, each with 1/8 of K
constexpr int kWarps = 8;        // each warp owns 16 tokens and all r rows
constexpr int kThreads = 32 * kWarps;
constexpr int kXPitch = kTokens + 8;  // halves per staged X^T row (+8: no bank conflicts, 32 B aligned)
constexpr int kLPitch = kDepth + 8;   // halves per staged L^T row
constexpr int kSumPitch = kTokens + 4;  // floats per row of the partial sums

constexpr size_t stage_bytes(int r) { return size_t{2} * (kDepth * kXPitch + r * kLPitch); }
constexpr size_t smem_bytes(int r) {
  const size_t pipeline = kStages * stage_bytes(r), sums = size_t{4} * r * kSumPitch;
  return pipeline > sums ? pipeline : sums;
}

// 16-byte asynchronous copy global -> shared; zero-fills when !valid (past K or past t).
__device__ __forceinline__ void copy16(void* smem, const void* gmem, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void wait_pending() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

template <typename T>
struct alignas(8) Four {
  T v[4];
};

// Block (tile, c) of a cluster: tokens [tile*128, +128), K rows [c*k_per, +k_per) of d.
template <typename T, int kRTiles>
__global__ void __cluster_dims__(kCluster, 1, 1) __launch_bounds__(kThreads)
    ThinProductKernel(const T* __restrict__ lt, const T* __restrict__ xt, T* __restrict__ tt, int d, int t,
                      int64_t ldt, int k_per) {
  constexpr int r = 16 * kRTiles;
  extern __shared__ __align__(128) unsigned char smem[];
  cg::cluster_group cluster = cg::this_cluster();
  const int c = static_cast<int>(cluster.block_rank());
  const int token0 = static_cast<int>(blockIdx.x / kCluster) * kTokens;
  const int k0 = c * k_per, k_end = min(d, k0 + k_per);
  const int tiles = k_end > k0 ? (k_end - k0 + kDepth - 1) / kDepth : 0;
  const int warp = threadIdx.x / 32;

  auto x_stage = [&](int s) { return reinterpret_cast<T*>(smem + s * stage_bytes(r)); };
  auto l_stage = [&](int s) { return x_stage(s) + kDepth * kXPitch; };
  auto load = [&](int s, int tile) {
    const int kb = k0 + tile * kDepth;
    T* xs = x_stage(s);
    T* ls = l_stage(s);
    // X^T: kDepth rows x 128 tokens, 16 chunks of 8 halves per row.
    for (int i = threadIdx.x; i < kDepth * (kTokens / 8); i += kThreads) {
      const int row = i / (kTokens / 8), col = (i % (kTokens / 8)) * 8;
      const bool valid = kb + row < k_end && token0 + col < t;
      const T* src = valid ? xt + static_cast<int64_t>(kb + row) * t + token0 + col : xt;
      copy16(xs + row * kXPitch + col, src, valid);
    }
    // L^T: r rows x kDepth columns, 8 chunks per row.
    for (int i = threadIdx.x; i < r * (kDepth / 8); i += kThreads) {
      const int row = i / (kDepth / 8), col = (i % (kDepth / 8)) * 8;
      const bool valid = kb + col < k_end;
      const T* src = valid ? lt + static_cast<int64_t>(row) * d + kb + col : lt;
      copy16(ls + row * kLPitch + col, src, valid);
    }
  };

  // Warps tile r x 128 as kWarpsR x (8 / kWarpsR): each holds kRows x kCols fragments. Two
  // warps along r halve how often each warp re-reads L^T's fragments from shared memory.
  constexpr int kWarpsR = kRTiles % 2 == 0 ? 2 : 1;
  constexpr int kRows = kRTiles / kWarpsR, kCols = kWarpsR;
  const int row0 = (warp % kWarpsR) * kRows * 16, col0 = (warp / kWarpsR) * kCols * 16;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kRows][kCols];
#pragma unroll
  for (int i = 0; i < kRows; ++i)
#pragma unroll
    for (int j = 0; j < kCols; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < tiles) load(s, s);
    commit();
  }
  for (int tile = 0; tile < tiles; ++tile) {
    wait_pending<kStages - 2>();
    __syncthreads();  // stage `tile` landed for everyone; stage `tile - 1` is free again
    if (tile + kStages - 1 < tiles) load((tile + kStages - 1) % kStages, tile + kStages - 1);
    commit();
    const T* xs = x_stage(tile % kStages);
    const T* ls = l_stage(tile % kStages);
#pragma unroll
    for (int kk = 0; kk < kDepth; kk += 16) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b[kCols];
#pragma unroll
      for (int j = 0; j < kCols; ++j) wmma::load_matrix_sync(b[j], xs + kk * kXPitch + col0 + j * 16, kXPitch);
#pragma unroll
      for (int i = 0; i < kRows; ++i) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::load_matrix_sync(a, ls + (row0 + i * 16) * kLPitch + kk, kLPitch);
#pragma unroll
        for (int j = 0; j < kCols; ++j) wmma::mma_sync(acc[i][j], a, b[j], acc[i][j]);
      }
    }
  }
  wait_pending<0>();
  __syncthreads();  // the pipeline's shared memory becomes the partial sums

  float* sums = reinterpret_cast<float*>(smem);
#pragma unroll
  for (int i = 0; i < kRows; ++i)
#pragma unroll
    for (int j = 0; j < kCols; ++j)
      wmma::store_matrix_sync(sums + (row0 + i * 16) * kSumPitch + col0 + j * 16, acc[i][j], kSumPitch,
                              wmma::mem_row_major);
  cluster.sync();  // every block's partial sums are visible to the cluster

  // Block c adds up its 1/8 of the tile's r x 128 sums over the cluster, 4 at a time.
  constexpr int kPart = r * kTokens / kCluster;
  for (int e = c * kPart + threadIdx.x * 4; e < (c + 1) * kPart; e += kThreads * 4) {
    const int row = e / kTokens, col = e % kTokens;
    float4 total = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
    for (int q = 0; q < kCluster; ++q) {
      const float4 v = *reinterpret_cast<const float4*>(cluster.map_shared_rank(sums, q) + row * kSumPitch + col);
      total.x += v.x;
      total.y += v.y;
      total.z += v.z;
      total.w += v.w;
    }
    if (token0 + col < t) {  // t % 8 == 0: the four tokens are all in or all out
      Four<T> out;
      out.v[0] = from_float<T>(total.x);
      out.v[1] = from_float<T>(total.y);
      out.v[2] = from_float<T>(total.z);
      out.v[3] = from_float<T>(total.w);
      *reinterpret_cast<Four<T>*>(tt + static_cast<int64_t>(row) * ldt + token0 + col) = out;  // 8-byte store
    }
  }
  cluster.sync();  // no block leaves while another still reads its shared memory
}

template <typename T, int kRTiles>
void launch(const void* lt, const void* xt, void* tt, int64_t d, int64_t t, int64_t ldt, cudaStream_t stream) {
  const size_t smem = smem_bytes(16 * kRTiles);
  auto kernel = ThinProductKernel<T, kRTiles>;
  // Once per instantiation, before any launch (also before a graph capture of one).
  static const bool configured = [&] {
    SLOPE_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    return true;
  }();
  (void)configured;
  const int64_t token_tiles = (t + kTokens - 1) / kTokens;
  // K split in whole stages over the cluster's eight blocks.
  const int64_t k_per = ((d + kCluster - 1) / kCluster + kDepth - 1) / kDepth * kDepth;
  kernel<<<static_cast<unsigned>(token_tiles * kCluster), kThreads, smem, stream>>>(
      static_cast<const T*>(lt), static_cast<const T*>(xt), static_cast<T*>(tt), static_cast<int>(d),
      static_cast<int>(t), ldt, static_cast<int>(k_per));
  SLOPE_CHECK_LAUNCH("ThinProductKernel");
}

template <typename T>
void launch_rank(int64_t r, const void* lt, const void* xt, void* tt, int64_t d, int64_t t, int64_t ldt,
                 cudaStream_t stream) {
  switch (r / 16) {
    case 1: return launch<T, 1>(lt, xt, tt, d, t, ldt, stream);
    case 2: return launch<T, 2>(lt, xt, tt, d, t, ldt, stream);
    case 3: return launch<T, 3>(lt, xt, tt, d, t, ldt, stream);
    case 4: return launch<T, 4>(lt, xt, tt, d, t, ldt, stream);
    case 5: return launch<T, 5>(lt, xt, tt, d, t, ldt, stream);
    case 6: return launch<T, 6>(lt, xt, tt, d, t, ldt, stream);
    case 7: return launch<T, 7>(lt, xt, tt, d, t, ldt, stream);
    case 8: return launch<T, 8>(lt, xt, tt, d, t, ldt, stream);
    default: break;
  }
  throw Error(ErrorKind::kInvalidInput, "thin_product: rank " + std::to_string(r) + " out of range");
}

}  // namespace

bool thin_product_supports(int64_t r, int64_t d, int64_t t, int64_t ldt) {
  return r >= 16 && r <= kThinProductMaxRank && r % 16 == 0 && d > 0 && d % 16 == 0 && t > 0 && t % 8 == 0 &&
         ldt >= t && ldt % 8 == 0 && d < (int64_t{1} << 31) && t < (int64_t{1} << 31);
}

void thin_product(const void* lt, const void* xt, void* tt, int64_t r, int64_t d, int64_t t, int64_t ldt,
                  DType dtype, cudaStream_t stream) {
  if (!thin_product_supports(r, d, t, ldt))
    throw Error(ErrorKind::kInvalidInput, "thin_product: needs a rank that is a multiple of 16 up to " +
                                              std::to_string(kThinProductMaxRank) +
                                              ", d a multiple of 16, t and ldt multiples of 8 with ldt >= t "
                                              "(got r=" + std::to_string(r) + ", d=" + std::to_string(d) +
                                              ", t=" + std::to_string(t) + ", ldt=" + std::to_string(ldt) + ")");
  require(lt != nullptr && xt != nullptr && tt != nullptr, "thin_product: null operand");
  dispatch_16bit(dtype, [&](auto zero) { launch_rank<decltype(zero)>(r, lt, xt, tt, d, t, ldt, stream); });
}

}  // namespace slope::gpu
