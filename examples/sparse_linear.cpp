// slope_gpu from another project: Y = X W^T with W pruned 2:4 and run on the sparse tensor
// cores (cuSPARSELt, through slope's engine and its tuning cache), beside dense cuBLASLt on
// the same pruned W. Prints the two device times and the sparse result's relative error.
// Usage: sparse_linear [D_OUT D_IN TOKENS]   (default 4096 4096 2048; multiples of 16)
#include <cstdio>
#include <string>

#include "example_arguments.hpp"
#include "slope/bench/timer.hpp"
#include "slope/core/error.hpp"
#include "slope/core/tuning_cache.hpp"
#include "slope/gpu/dense_gemm.hpp"
#include "slope/gpu/device_buffer.hpp"
#include "slope/gpu/device_info.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/sparse_linear.hpp"
#include "slope/gpu/stream.hpp"

int main(int argc, char** argv) {
  try {
    slope::require(argc == 1 || argc == 4, "usage: sparse_linear [D_OUT D_IN TOKENS]");
    const int64_t m = argc == 4 ? size_argument(argv[1], "D_OUT") : 4096;
    const int64_t k = argc == 4 ? size_argument(argv[2], "D_IN") : 4096;
    const int64_t t = argc == 4 ? size_argument(argv[3], "TOKENS") : 2048;
    const slope::DType f16 = slope::DType::kF16;
    namespace gpu = slope::gpu;
    gpu::require_cuda_device();

    gpu::Stream owned_stream;  // a created stream, so that the timer can capture CUDA graphs
    cudaStream_t stream = owned_stream.get();
    gpu::DeviceBuffer w(m * k * 2), x(t * k * 2), y_sparse(t * m * 2), y_dense(t * m * 2);
    gpu::fill_uniform(w.get(), m * k, 1, 1.0f, f16, stream);
    gpu::fill_uniform(x.get(), t * k, 2, 1.0f, f16, stream);
    gpu::prune_rows_2to4(w.get(), w.get(), nullptr, m, k, f16, stream);  // W := W pruned 2:4 along rows

    // The first run of a shape searches cuSPARSELt's kernels (0.1-0.5 s); the cache keeps the
    // choice for later runs on this GPU.
    slope::TuningCache cache(slope::default_tuning_cache_path());
    for (const std::string& warning : cache.warnings()) std::fprintf(stderr, "warning: %s\n", warning.c_str());
    gpu::SparseEngine engine(&cache);
    // Token-major X (t x k) and Y (t x m), as a framework's activations are laid out.
    gpu::SparseLinear sparse(engine, m, k, t, f16, gpu::Tiling::kNone, stream, nullptr, gpu::InputLayout::kTokenMajor,
                             false, gpu::OutputLayout::kTokenMajor);
    sparse.set_weight(w.get(), stream);
    gpu::DenseGemmCache dense_plans;
    const gpu::DenseGemm& dense = dense_plans.get(gpu::dense_twin_shape(t, m, k, f16, true, true), stream);

    auto run_sparse = [&](int) { sparse.forward(x.get(), y_sparse.get(), stream); };
    auto run_dense = [&](int) { gpu::run_dense_twin(dense, true, x.get(), w.get(), y_dense.get(), stream); };
    run_sparse(0);
    run_dense(0);
    const double error = gpu::relative_error_device(y_sparse.get(), y_dense.get(), t * m, f16, stream);
    const slope::bench::PairTiming timing = slope::bench::time_pair(run_dense, run_sparse, stream);
    std::printf("Y = X W^T, W %lldx%lld 2:4, %lld tokens, fp16: dense %.4f ms, sparse %.4f ms, speedup %.2f, "
                "relative error %.1e\n",
                static_cast<long long>(m), static_cast<long long>(k), static_cast<long long>(t),
                timing.a.median_ms, timing.b.median_ms, timing.ratio_median, error);
    if (error > 1e-3) {
      std::fprintf(stderr, "error: the sparse product differs from dense by %.1e\n", error);
      return 1;
    }
    return 0;
  } catch (const slope::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return e.kind() == slope::ErrorKind::kInvalidInput ? 2 : 1;
  }
}
