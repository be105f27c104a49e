// The two thin products of a low-rank adapter, Y = (X L) R with a small rank r, as slope's
// own tensor-core kernels. At r <= 2% of d both are bound by memory (reading X, writing Y),
// and cuBLASLt's kernels for these shapes reach about half of the copy bandwidth:
//   down: T = X L is a long reduction (K = d) into a thin output. Split along d so that
//         every SM has work; the partial sums are added into an fp32 T.
//   up:   Y = T R has K = r: one pass that reads T and a slice of R per output tile and
//         writes Y once.
// Row-major, token-major: X t x d, L d x r, R r x n, Y t x n; 16-bit (fp16/bf16) operands,
// fp32 accumulation, T rounded to the 16-bit type before the second product (as cuBLASLt's
// two-product form stores it).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "slope/core/dtype.hpp"

namespace slope::gpu {

// The largest rank the kernels take (shared memory holds r columns of a tile).
inline constexpr int64_t kMaxThinRank = 128;

// t32 (tokens x rank, fp32) += X L. The caller zeroes t32 first (lowrank_product does).
// d_in and rank: multiples of 16, rank <= kMaxThinRank.
void lowrank_down(const void* x, const void* l, float* t32, int64_t tokens, int64_t d_in, int64_t rank,
                  DType dtype, cudaStream_t stream);

// Y (tokens x d_out, 16-bit) = T R, T read from fp32 and rounded to dtype. d_out and rank:
// multiples of 16, rank <= kMaxThinRank.
void lowrank_up(const float* t32, const void* r, void* y, int64_t tokens, int64_t rank, int64_t d_out, DType dtype,
                cudaStream_t stream);

// Y = (X L) R: zeroes t32 (tokens x rank fp32 scratch), then down and up.
void lowrank_product(const void* x, const void* l, const void* r, float* t32, void* y, int64_t tokens,
                     int64_t d_in, int64_t rank, int64_t d_out, DType dtype, cudaStream_t stream);

}  // namespace slope::gpu
