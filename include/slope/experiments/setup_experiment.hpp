// `slope setup`: the paper's setup-overhead figure, explained. Per d x d weight at `tokens`
// tokens: one-time host setup (descriptors + plan; also a token-major output's first plan,
// whose algorithm selection each shape pays once, and each later weight's plan), the
// algorithm search, a plan made from the tuning cache instead, pruning + compression (paid at
// every weight update), one multiplication, and the steady-state host cost of one call.
#pragma once

#include "slope/core/dtype.hpp"
#include "slope/core/table.hpp"
#include "slope/experiments/spmm_experiment.hpp"
#include "slope/gpu/dense_gemm.hpp"
#include "slope/gpu/sparse_engine.hpp"

namespace slope {

using SetupOptions = SweepOptions;

// Columns: hidden, tokens, plan_init_ms, token_major_plan_init_ms, token_major_next_plan_ms,
// token_major_prepared_ms (the run's token-major selections made together on host threads, per
// shape), search_ms, cache_hit_ms, prune_compress_ms, compress_gbps, matmul_ms, dense_matmul_ms,
// default_alg_matmul_ms, host_overhead_us, dense_host_overhead_us (the median of 9 batches' means,
// bench::host_cost_per_call), host_overhead_min_us, host_overhead_max_us (the fastest and slowest
// batch). `summary` gets the largest median over the shapes, for both libraries.
Table run_setup_experiment(const SetupOptions& options, gpu::SparseEngine& engine, gpu::DenseGemmCache& dense,
                           Metadata& summary, const Progress& progress);

}  // namespace slope
