#include "slope/experiments/setup_experiment.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "slope/bench/timer.hpp"
#include "slope/core/error.hpp"
#include "slope/core/wall_clock.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/stream.hpp"

namespace slope {

Table run_setup_experiment(const SetupOptions& o, gpu::SparseEngine& engine, gpu::DenseGemmCache& dense,
                           Metadata& summary, const Progress& progress) {
  Table table({"hidden", "tokens", "plan_init_ms", "token_major_plan_init_ms", "token_major_next_plan_ms",
               "token_major_prepared_ms", "search_ms", "cache_hit_ms", "prune_compress_ms", "compress_gbps",
               "matmul_ms", "dense_matmul_ms", "default_alg_matmul_ms", "host_overhead_us", "dense_host_overhead_us",
               "host_overhead_min_us", "host_overhead_max_us"});
  double worst_host_us = 0.0, worst_dense_host_us = 0.0;
  gpu::Stream owned_stream;  // a created stream: its calls can be captured and timed as a graph
  cudaStream_t stream = owned_stream.get();
  const int64_t t = o.tokens;
  // The token-major shapes' algorithm selections made together, as a run that lists its shapes
  // up front makes them (SparseEngine::prepare_selections, on host threads): wall time per shape.
  double prepared_ms = NAN;
  {
    gpu::SparseEngine together(nullptr, gpu::SearchPolicy::kDefault);
    std::vector<gpu::SparseShape> shapes;
    for (int64_t d : o.hidden) {
      gpu::SparseShape s{d, d, t, o.dtype, false, gpu::InputLayout::kTokenMajor};
      s.output = gpu::OutputLayout::kTokenMajor;
      shapes.push_back(s);
    }
    together.prepare_selections(shapes);
    if (together.prepared_selection_count() > 0)
      prepared_ms = together.prepare_ms() / static_cast<double>(together.prepared_selection_count());
    if (progress)
      progress(fmt::format("setup: {} token-major selections made together on {} host threads in {:.1f} ms "
                           "({:.1f} ms per shape)",
                           together.prepared_selection_count(), together.prepare_threads(), together.prepare_ms(),
                           prepared_ms));
  }
  for (int64_t d : o.hidden) {
    const gpu::SparseShape shape{d, d, t, o.dtype, false, gpu::InputLayout::kTokenMajor};
    gpu::DeviceBuffer w(d * d * 2), w_pruned(d * d * 2), x(t * d * 2), y(t * d * 2);
    gpu::fill_uniform(w.get(), d * d, 31, 1.0f, o.dtype, stream);
    gpu::fill_uniform(x.get(), t * d, 32, 1.0f, o.dtype, stream);
    gpu::CompressedWeight cw(engine.context(), d, d, o.dtype);
    gpu::prune_rows_2to4(w.get(), w_pruned.get(), nullptr, d, d, o.dtype, stream);
    cw.compress(w_pruned.get(), stream);
    SLOPE_CHECK(cudaStreamSynchronize(stream));

    // One-time host setup: descriptors and plan with the default algorithm (best of 3).
    double init_ms = 1e30;
    for (int i = 0; i < 3; ++i) {
      const auto start = std::chrono::steady_clock::now();
      gpu::SparsePlan fresh(engine.context(), shape);
      init_ms = std::min(init_ms, ms_since(start));
    }
    // A plan for a token-major output (Y, t x d), which each such weight gets on its own
    // (see sparselt_plan.hpp). The first of a shape pays for the algorithm selection (~0.2 s on
    // the H200); every later weight's plan is made from the same selection (best of 3).
    gpu::SparseShape token_major = shape;
    token_major.output = gpu::OutputLayout::kTokenMajor;
    const auto token_major_start = std::chrono::steady_clock::now();
    const gpu::SparseSelection selection(engine.context(), token_major);
    { const gpu::SparsePlan first(selection); }
    const double token_major_init_ms = ms_since(token_major_start);
    double token_major_next_ms = 1e30;
    for (int i = 0; i < 3; ++i) {
      const auto start = std::chrono::steady_clock::now();
      const gpu::SparsePlan next(selection);
      token_major_next_ms = std::min(token_major_next_ms, ms_since(start));
    }
    // The search, on a fresh plan (what a first run pays per shape).
    gpu::SparsePlan searched(engine.context(), shape);
    const gpu::SearchOperands operands(searched, stream);
    const auto search_start = std::chrono::steady_clock::now();
    TuningEntry entry;
    double search_ms = NAN;
    try {
      entry = gpu::search_configurations(searched, operands, stream);
      SLOPE_CHECK(cudaStreamSynchronize(stream));
      search_ms = ms_since(search_start);
    } catch (const Error& e) {
      if (progress) progress("setup: search failed for d=" + std::to_string(d) + ": " + e.what());
    }
    // A later run: the plan made from the tuning cache's entry, no search.
    double hit_ms = 1e30;
    for (int i = 0; i < 3; ++i) {
      const auto start = std::chrono::steady_clock::now();
      gpu::SparsePlan from_cache(engine.context(), shape, &entry);
      hit_ms = std::min(hit_ms, ms_since(start));
    }
    // Paid at every weight update: prune + compress of the d x d weight. Timed eagerly:
    // cuSPARSELt does not promise that compression can be captured into a graph.
    const bench::Timing prune_compress = bench::time_device_eager(
        [&](int) {
          gpu::prune_rows_2to4(w.get(), w_pruned.get(), nullptr, d, d, o.dtype, stream);
          cw.compress(w_pruned.get(), stream);
        },
        stream, o.samples);
    // Bytes that must move: read W, write pruned W, read it again, write 9/16 of it.
    const double pc_bytes = 2.0 * d * d * (1 + 1 + 1 + 9.0 / 16.0);
    const gpu::SparsePlan& tuned = engine.plan(shape, stream);
    const bench::Timing mm = bench::time_device([&](int) { tuned.matmul(cw.data(), x.get(), y.get(), stream); },
                                                stream, o.samples);
    gpu::SparsePlan default_plan(engine.context(), shape);
    const bench::Timing mm_default = bench::time_device(
        [&](int) { default_plan.matmul(cw.data(), x.get(), y.get(), stream); }, stream, o.samples);
    const gpu::DenseGemm& gemm = dense.get(gpu::feature_major_shape(t, d, d, o.dtype, true), stream);
    const bench::Timing dense_mm = bench::time_device([&](int) { gemm.run(x.get(), w_pruned.get(), y.get(), stream); },
                                                      stream, o.samples);
    const bench::HostCost host = bench::host_cost_per_call([&] { tuned.matmul(cw.data(), x.get(), y.get(), stream); }, stream);
    const bench::HostCost dense_host =
        bench::host_cost_per_call([&] { gemm.run(x.get(), w_pruned.get(), y.get(), stream); }, stream);
    worst_host_us = std::max(worst_host_us, host.median_us);
    worst_dense_host_us = std::max(worst_dense_host_us, dense_host.median_us);
    table.add_row({d, t, init_ms, token_major_init_ms, token_major_next_ms, prepared_ms, search_ms, hit_ms,
                   prune_compress.median_ms, pc_bytes / prune_compress.median_ms * 1e-6, mm.median_ms,
                   dense_mm.median_ms, mm_default.median_ms, host.median_us, dense_host.median_us, host.min_us, host.max_us});
    if (progress)
      progress(fmt::format("setup d={:5} plan {:7.2f} ms (token-major {:7.2f} ms, next {:5.2f} ms)  "
                           "search {:8.1f} ms  cache hit {:6.2f} ms  prune+compress {:6.3f} ms  matmul {:6.3f} ms  "
                           "host/call {:5.1f} us (batches {:.1f}-{:.1f}; cuBLASLt {:.1f})",
                           d, init_ms, token_major_init_ms, token_major_next_ms, search_ms, hit_ms,
                           prune_compress.median_ms, mm.median_ms, host.median_us, host.min_us, host.max_us,
                           dense_host.median_us));
  }
  summary.emplace_back("host_overhead_us_largest", fmt::format("{:.1f}", worst_host_us));
  summary.emplace_back("dense_host_overhead_us_largest", fmt::format("{:.1f}", worst_dense_host_us));
  return table;
}

}  // namespace slope
