// The low-rank adapter's thin product T = X L with feature-major activations, on slope's own
// kernel:
//
//     T^T (r x t, row stride ldt) = L^T (r x d, row-major) . X^T (d x t, row-major)
//
// For r <= 128 the product is bound by reading X once (2 t d bytes against 2 t d r flops),
// but it has few output tiles (r x t) and a long K (d), which cuBLASLt covers with split-K
// kernels that reached 1.7-1.9 TB/s reading X on the H200. slope's kernel gives each block
// 128 tokens and one eighth of d, streams X^T and L^T through shared memory (cp.async, four
// stages, tensor cores via WMMA), and sums the eight partial products of a 128-token tile
// inside a thread-block cluster through distributed shared memory: X is read once, T is
// written once, and nothing else touches global memory. Needs sm_90 (clusters).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "slope/core/dtype.hpp"

namespace slope::gpu {

// The largest rank the kernel takes; ranks are multiples of 16 (padded_rank()).
inline constexpr int64_t kThinProductMaxRank = 128;

// Whether thin_product() takes these dimensions: r a multiple of 16 in [16, 128], d a
// multiple of 16, t a multiple of 8 (16-byte rows), ldt >= t and a multiple of 8.
bool thin_product_supports(int64_t r, int64_t d, int64_t t, int64_t ldt);

// T^T = L^T X^T as above, fp16 or bf16 with fp32 accumulation, on `stream`. Throws
// kInvalidInput naming the dimension when thin_product_supports() is false.
void thin_product(const void* lt, const void* xt, void* tt, int64_t r, int64_t d, int64_t t, int64_t ldt,
                  DType dtype, cudaStream_t stream);

}  // namespace slope::gpu
