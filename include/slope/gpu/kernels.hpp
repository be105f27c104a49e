// Memory-bound CUDA kernels, each with one host launcher that checks its arguments, launches
// on the caller's stream and checks the launch. 16-bit buffers hold fp16 or bf16 (`dtype`).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "slope/core/dtype.hpp"
#include "slope/gpu/positions.hpp"

namespace slope::gpu {

// Uniform values in [-scale, scale), rounded to dtype, from a counter-based hash of
// (seed, index): reproducible and independent of the launch shape.
void fill_uniform(void* out, int64_t count, uint64_t seed, float scale, DType dtype, cudaStream_t stream);

// Values of magnitude in [1, 2) with random signs, from the same hash: never zero (probes
// whose every kept slot must be identifiable).
void fill_nonzero(void* out, int64_t count, uint64_t seed, DType dtype, cudaStream_t stream);

// ||a - b||_F / ||b||_F over `count` 16-bit elements (a synchronous reduction).
double relative_error_device(const void* a, const void* b, int64_t count, DType dtype, cudaStream_t stream);

// Row-wise 2:4 magnitude pruning of a rows x cols row-major matrix (cols % 8 == 0), with the
// CPU reference's tie breaking (slope::nm_mask). `out` may equal `in`. When `indices` is not
// null it receives the kept positions, 2 bits each, 4 bits per group, two groups per byte
// (low nibble first): rows * cols / 8 bytes.
void prune_rows_2to4(const void* in, void* out, uint8_t* indices, int64_t rows, int64_t cols, DType dtype,
                     cudaStream_t stream);

// SLoPe's second pruning: from W^R (rows x cols, row-wise 2:4) builds T = (W^{R,C})^T
// (cols x rows): W^R pruned 2:4 down its columns, then transposed, so that T is row-wise 2:4
// and the input gradient dX = dY W^{R,C} = dY T^T runs on sparse tensor cores.
void double_prune_transpose(const void* w_r, void* t_out, int64_t rows, int64_t cols, DType dtype,
                            cudaStream_t stream);

// The weight gradient on W's kept elements only: from a dense rows x cols gradient and W's
// 2:4 positions (positions.hpp), writes the kept values in the order of W's compressed values
// (row-major), rows x cols / 2 elements; adds to `kept` when accumulate (sum in fp32, stored
// 16-bit).
void gather_kept_2to4(const void* dense, Positions2to4 positions, void* kept, int64_t rows, int64_t cols,
                      bool accumulate, DType dtype, cudaStream_t stream);

// Bias gradient: the sum of each row of a rows x cols 16-bit matrix (dY^T: features x
// tokens), into `out` (rows, 16-bit); adds to `out` when accumulate.
void row_sums(const void* in, void* out, int64_t rows, int64_t cols, bool accumulate, DType dtype,
              cudaStream_t stream);

// ReLU backward in place: grad[i] = 0 where out[i] <= 0 (out: the ReLU's output).
void relu_backward(void* grad, const void* out, int64_t count, DType dtype, cudaStream_t stream);

// grad[i] = 0 where param[i] == 0: a pruned parameter (L of the adapter) gets no update.
void zero_where_zero(void* grad, const void* param, int64_t count, DType dtype, cudaStream_t stream);

// out (cols x rows) = in^T (in: rows x cols), both row-major 16-bit. Not in place.
void transpose_16bit(const void* in, void* out, int64_t rows, int64_t cols, cudaStream_t stream);

}  // namespace slope::gpu
