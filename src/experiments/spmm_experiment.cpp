#include "slope/experiments/spmm_experiment.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "slope/bench/timer.hpp"
#include "slope/core/geometric_mean.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/sparse_linear.hpp"
#include "slope/gpu/stream.hpp"

namespace slope {

std::vector<int64_t> paper_hidden_sizes() { return {768, 1024, 2048, 2560, 4096, 5120, 7168, 9216}; }

std::vector<LinearShape> spmm_shapes(int64_t d) {
  return {{"attention", d, d, false},
          {"upsample", 4 * d, d, false},
          {"downsample", d, 4 * d, false},
          {"upsample_tiled", 4 * d, d, true}};
}

namespace {

// One set of operands; several are rotated so that the L2 does not hold them.
struct OperandSet {
  gpu::DeviceBuffer w, x, y_dense, y_sparse;
  std::unique_ptr<gpu::SparseLinear> sparse;
};

// One value per part of W, written compactly: "2560", "2048+512", or "768x4" where all n agree.
std::string per_part(const gpu::SparseLinear& layer, const std::function<int64_t(int64_t)>& value) {
  const int64_t n = layer.tiles();
  bool equal = true;
  for (int64_t i = 1; i < n; ++i) equal = equal && value(i) == value(0);
  if (n > 1 && equal) return fmt::format("{}x{}", value(0), n);
  std::string text;
  for (int64_t i = 0; i < n; ++i) text += (i ? "+" : "") + std::to_string(value(i));
  return text;
}

// The rows of each part W is split into: "2560", "2048+512", "768x4".
std::string row_parts(const gpu::SparseLinear& layer) {
  return per_part(layer, [&](int64_t i) { return layer.part_rows(i); });
}

// The kernel configuration of each part, in row_parts' order ("42+34"; "40x4" for tiles).
std::string part_configs(const gpu::SparseLinear& layer) {
  return per_part(layer, [&](int64_t i) { return int64_t{layer.part_config_id(i)}; });
}

}  // namespace

Table run_spmm_experiment(const SpmmOptions& o, gpu::SparseEngine& engine, gpu::DenseGemmCache& dense,
                          Metadata& summary, const Progress& progress) {
  Table table({"hidden", "shape", "m", "k", "tokens", "dtype", "dense_ms", "sparse_ms", "speedup", "dense_tflops",
               "sparse_tflops", "weight_bytes", "dense_gbps", "sparse_gbps", "rel_error", "tiles", "row_parts",
               "configs", "plan", "engine_uses", "dense_eager_ms", "sparse_eager_ms", "eager_speedup",
               "dense_heuristic_ms", "speedup_vs_heuristic", "heuristic_is_tuned"});
  // The dense baseline is tuned like the sparse product. For comparison, also cuBLASLt's first
  // heuristic pick, not tuned: what a plain cuBLAS call runs.
  gpu::DenseGemmCache heuristic(false);
  gpu::Stream owned_stream;  // a created stream: its calls can be captured and timed as a graph
  cudaStream_t stream = owned_stream.get();
  const int64_t t = o.tokens;
  // The ceiling for the products that reading W bounds (few tokens: a decode step).
  const double hbm_gbps = bench::measure_copy_gbps(stream);
  double best_sparse_hbm_fraction = 0.0;
  GeometricMean counted_speedups, counted_heuristic_speedups;  // the shapes of the summary
  // The engine's own choice for one W: whole, or in wave bands where they measure faster
  // (measured once per shape; the engine remembers it for every set).
  const auto tiling_of = [](const LinearShape& s) { return s.tiled ? gpu::Tiling::kSquare : gpu::Tiling::kAutoBands; };
  // Every shape's algorithm selections at once, on host threads (sparse_engine.hpp).
  std::vector<gpu::SparseShape> shapes;
  for (int64_t d : o.hidden)
    for (const LinearShape& s : spmm_shapes(d)) {
      const auto more =
          gpu::sparse_linear_shapes(engine, {s.m, s.k, t, o.dtype, false, o.input, false, o.output}, tiling_of(s));
      shapes.insert(shapes.end(), more.begin(), more.end());
    }
  engine.prepare_selections(shapes);
  for (int64_t d : o.hidden) {
    double untiled_speedup = 0.0, untiled_heuristic_speedup = 0.0;
    for (const LinearShape& s : spmm_shapes(d)) {
      const size_t events_before = engine.events().size();
      const double set_bytes = 2.0 * (s.m * s.k + t * s.k + 2 * t * s.m);
      const int sets = bench::rotation_count(set_bytes);
      const gpu::Tiling tiling = tiling_of(s);
      std::vector<OperandSet> ops(static_cast<size_t>(sets));
      for (int i = 0; i < sets; ++i) {
        OperandSet& op = ops[static_cast<size_t>(i)];
        op.w = gpu::DeviceBuffer(s.m * s.k * 2);
        op.x = gpu::DeviceBuffer(t * s.k * 2);
        op.y_dense = gpu::DeviceBuffer(t * s.m * 2);
        op.y_sparse = gpu::DeviceBuffer(t * s.m * 2);
        gpu::fill_uniform(op.w.get(), s.m * s.k, 100 + i, 1.0f, o.dtype, stream);
        gpu::fill_uniform(op.x.get(), t * s.k, 200 + i, 1.0f, o.dtype, stream);
        gpu::prune_rows_2to4(op.w.get(), op.w.get(), nullptr, s.m, s.k, o.dtype, stream);
        op.sparse = std::make_unique<gpu::SparseLinear>(engine, s.m, s.k, t, o.dtype, tiling, stream, nullptr, o.input,
                                                        false, o.output);
        op.sparse->set_weight(op.w.get(), stream);
      }
      // The dense twin computes the same Y (or Y^T) from the same operands in the same layouts.
      const bool token_major_in = o.input == gpu::InputLayout::kTokenMajor;
      const bool token_major_out = o.output == gpu::OutputLayout::kTokenMajor;
      const gpu::GemmShape dense_shape = gpu::dense_twin_shape(t, s.m, s.k, o.dtype, token_major_in, token_major_out);
      const gpu::DenseGemm& gemm = dense.get(dense_shape, stream);
      const gpu::DenseGemm& heuristic_gemm = heuristic.get(dense_shape, stream);
      auto dense_product = [&](const gpu::DenseGemm& g, int i) {
        OperandSet& op = ops[static_cast<size_t>(i % sets)];
        gpu::run_dense_twin(g, token_major_out, op.x.get(), op.w.get(), op.y_dense.get(), stream);
      };
      auto run_dense = [&](int i) { dense_product(gemm, i); };
      auto run_heuristic = [&](int i) { dense_product(heuristic_gemm, i); };
      auto run_sparse = [&](int i) {
        OperandSet& op = ops[static_cast<size_t>(i % sets)];
        op.sparse->forward(op.x.get(), op.y_sparse.get(), stream);
      };
      // Correctness on the same pruned weights, every output element written (poisoned first).
      gpu::poison(ops[0].y_sparse.get(), t * s.m, stream);
      run_dense(0);
      run_sparse(0);
      const double rel = gpu::relative_error_device(ops[0].y_sparse.get(), ops[0].y_dense.get(), t * s.m, o.dtype, stream);
      // Device time (CUDA graph replay), dense and sparse samples interleaved; the speedup is
      // the median of the paired ratios. Then once more with eager launches, which for the
      // small shapes measure the host's enqueue rate rather than the GPU.
      const bench::PairTiming paired = bench::time_pair(run_dense, run_sparse, stream, 2 * o.samples, 5, sets);
      const double dense_ms = paired.a.median_ms, sparse_ms = paired.b.median_ms;
      const double dense_eager_ms = bench::time_device_eager(run_dense, stream, o.samples, 5, sets).median_ms;
      const double sparse_eager_ms = bench::time_device_eager(run_sparse, stream, o.samples, 5, sets).median_ms;
      // Timing the untuned pick again when tuning kept it would only add run-to-run spread.
      const bool heuristic_is_tuned = gemm.same_algorithm(heuristic_gemm);
      const bench::PairTiming versus_heuristic =
          heuristic_is_tuned ? paired : bench::time_pair(run_heuristic, run_sparse, stream, 2 * o.samples, 5, sets);
      const double flops = 2.0 * t * s.m * s.k;
      // The bytes a product cannot avoid moving: X read once, W read as stored (dense, or
      // cuSPARSELt's kept values and metadata), Y written once. Tiles read X once each, so
      // their rate undercounts what they move.
      const double elt = 2.0, xy_bytes = elt * (t * s.k + t * s.m);
      const auto weight_bytes = static_cast<double>(ops[0].sparse->compressed_bytes());
      const double dense_gbps = (xy_bytes + elt * s.m * s.k) / dense_ms * 1e-6;
      const double sparse_gbps = (xy_bytes + weight_bytes) / sparse_ms * 1e-6;
      best_sparse_hbm_fraction = std::max(best_sparse_hbm_fraction, sparse_gbps / hbm_gbps);
      const double speedup = paired.ratio_median;
      std::string plan = engine.policy() == gpu::SearchPolicy::kDefault ? "default" : "cached";
      for (size_t e = events_before; e < engine.events().size(); ++e)
        if (engine.events()[e].searched) plan = "searched";
      std::string uses;
      const double heuristic_speedup = versus_heuristic.ratio_median;
      if (s.name == "upsample") {
        untiled_speedup = speedup;
        untiled_heuristic_speedup = heuristic_speedup;
      } else if (s.name == "upsample_tiled") {
        uses = speedup > untiled_speedup ? "tiled" : "untiled";
      }
      // The engine's upsample is whichever layout is faster: count it once, as its best.
      if (s.name == "attention" || s.name == "downsample" || s.name == "upsample_tiled") {
        const bool tiled = s.name == "upsample_tiled";
        counted_speedups.add(tiled ? std::max(speedup, untiled_speedup) : speedup);
        counted_heuristic_speedups.add(tiled ? std::max(heuristic_speedup, untiled_heuristic_speedup) : heuristic_speedup);
      }
      const std::string parts = row_parts(*ops[0].sparse), configs = part_configs(*ops[0].sparse);
      table.add_row({d, s.name, s.m, s.k, t, std::string(to_string(o.dtype)), dense_ms, sparse_ms, speedup,
                     flops / dense_ms * 1e-9, flops / sparse_ms * 1e-9, weight_bytes, dense_gbps, sparse_gbps, rel,
                     ops[0].sparse->tiles(), parts, configs, plan, uses,
                     dense_eager_ms, sparse_eager_ms, dense_eager_ms / sparse_eager_ms,
                     versus_heuristic.a.median_ms, heuristic_speedup, std::string(heuristic_is_tuned ? "yes" : "no")});
      if (progress)
        progress(fmt::format("spmm d={:5} {:15} dense {:8.4f} ms  sparse {:8.4f} ms  speedup {:5.2f}  rel.err {:.1e}  "
                             "({}, rows {}, configuration {})",
                             d, s.name, dense_ms, sparse_ms, speedup, rel, plan, parts, configs));
    }
  }
  if (!counted_speedups.empty()) {
    summary.emplace_back("geomean_speedup", fmt::format("{:.4f}", counted_speedups.value()));
    summary.emplace_back("min_speedup", fmt::format("{:.4f}", counted_speedups.min()));
    summary.emplace_back("shapes_in_summary", std::to_string(counted_speedups.count()));
    summary.emplace_back("geomean_speedup_vs_heuristic", fmt::format("{:.4f}", counted_heuristic_speedups.value()));
    summary.emplace_back("min_speedup_vs_heuristic", fmt::format("{:.4f}", counted_heuristic_speedups.min()));
    summary.emplace_back("input_layout", o.input == gpu::InputLayout::kTokenMajor ? "token-major" : "feature-major");
    summary.emplace_back("output_layout", o.output == gpu::OutputLayout::kTokenMajor ? "token-major" : "feature-major");
  }
  summary.emplace_back("hbm_copy_gbps", fmt::format("{:.0f}", hbm_gbps));
  // Significant digits, not decimals: instrumented (compute-sanitizer) or at a few tokens the
  // fraction can be far below 0.001, and a rounded 0 would say no bandwidth at all.
  summary.emplace_back("sparse_hbm_fraction_max", fmt::format("{:.3g}", best_sparse_hbm_fraction));
  return table;
}

}  // namespace slope
