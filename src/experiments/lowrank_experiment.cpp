#include "slope/experiments/lowrank_experiment.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include <fmt/format.h>

#include "slope/bench/timer.hpp"
#include "slope/core/geometric_mean.hpp"
#include "slope/experiments/lowrank_layouts.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/inference_linear.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/stream.hpp"

namespace slope {
namespace {

struct Operands {
  gpu::DeviceBuffer x, l, r, t, y;
};

// Dense GEMM throughput in TFLOP/s, the compute ceiling of the roofline the low-rank products
// are held against: the best of three large square products (compute bound).
double measure_gemm_tflops(gpu::DenseGemmCache& cache, DType dtype, cudaStream_t stream) {
  double best = 0.0;
  for (int64_t n : {4096, 6144, 8192}) {
    const gpu::DenseGemm& g = cache.get(gpu::linear_shape(n, n, n, dtype), stream);
    gpu::DeviceBuffer a(n * n * 2), b(n * n * 2), c(n * n * 2);
    gpu::fill_uniform(a.get(), n * n, 1, 1.0f, dtype, stream);
    gpu::fill_uniform(b.get(), n * n, 2, 1.0f, dtype, stream);
    const double ms = bench::time_device([&](int) { g.run(a.get(), b.get(), c.get(), stream); }, stream, 5, 2).median_ms;
    best = std::max(best, 2.0 * n * n * n / ms * 1e-9);
  }
  return best;
}

// A way of running (X L) R, its time (both products together) and each product's alone;
// `tried`: every pair's time, as the CSV's candidates_ms shows it.
struct LowRankTiming {
  double ms = 1e30, first_ms = NAN, second_ms = NAN;
  LowRankLayout way;
  std::string tried;
};

// Bytes that (X L) R moves at rank r in fp16 or bf16: X read, L and R read, T = X L written
// and read back, Y written.
double low_rank_bytes(int64_t t, int64_t d, int64_t r) { return 2.0 * (t * d + d * r + 2.0 * t * r + r * d + t * d); }

// Operand sets for rank r, enough of them to rotate past the L2.
std::vector<Operands> make_operands(int64_t t, int64_t d, int64_t r, DType dtype, cudaStream_t stream) {
  const int sets = bench::rotation_count(low_rank_bytes(t, d, r));
  std::vector<Operands> ops(static_cast<size_t>(sets));
  for (int i = 0; i < sets; ++i) {
    Operands& op = ops[static_cast<size_t>(i)];
    op.x = gpu::DeviceBuffer(t * d * 2);
    op.l = gpu::DeviceBuffer(d * r * 2);
    op.r = gpu::DeviceBuffer(r * d * 2);
    op.t = gpu::DeviceBuffer(t * r * 2);
    op.y = gpu::DeviceBuffer(t * d * 2);
    gpu::fill_uniform(op.x.get(), t * d, 10 + i, 1.0f, dtype, stream);
    gpu::fill_uniform(op.l.get(), d * r, 20 + i, 0.05f, dtype, stream);
    gpu::fill_uniform(op.r.get(), r * d, 30 + i, 0.05f, dtype, stream);
  }
  return ops;
}

// The fastest way found to run (X L) R at rank r (t tokens, hidden d), each product timed
// alone on operands rotated past the L2, then the chosen pair timed together. plain: the
// paper's way (token-major activations, factors as d x r and r x d, cuBLASLt's first choice,
// from a `cache` built without tuning); otherwise, for each activation layout, the faster
// storage of each factor with the best of cuBLASLt's candidates for each product (from a
// tuning cache), then the pair timed together; the faster pair is kept. `only`: time that
// layout alone (a fresh measurement of a choice made before). `ops`: make_operands(t, d, r, ...).
LowRankTiming time_low_rank_pair(bool plain, int64_t t, int64_t d, int64_t r, DType dtype, int samples,
                                 std::vector<Operands>& ops, gpu::DenseGemmCache& cache, cudaStream_t stream,
                                 const LowRankLayout* only = nullptr) {
  const int sets = static_cast<int>(ops.size());
  // One product over the rotated operand sets, as a function of the call number:
  // run(a, b, out) with the operands named by member.
  using Member = gpu::DeviceBuffer Operands::*;
  auto product = [&](const gpu::GemmShape& shape, Member a, Member b, Member out) -> std::function<void(int)> {
    const gpu::DenseGemm* g = &cache.get(shape, stream);
    return [&, g, a, b, out](int call) {
      Operands& op = ops[static_cast<size_t>(call % sets)];
      g->run((op.*a).get(), (op.*b).get(), (op.*out).get(), stream);
    };
  };
  auto first_fn = [&](const LowRankLayout& w) {  // T = X L: operands (X, L) feature-major, (L, X) token-major
    const gpu::GemmShape shape = low_rank_first_shape(w, t, d, r, dtype);
    return w.feature_major ? product(shape, &Operands::x, &Operands::l, &Operands::t)
                           : product(shape, &Operands::l, &Operands::x, &Operands::t);
  };
  auto second_fn = [&](const LowRankLayout& w) {  // Y = T R: operands (T, R) feature-major, (R, T) token-major
    const gpu::GemmShape shape = low_rank_second_shape(w, t, d, r, dtype);
    return w.feature_major ? product(shape, &Operands::t, &Operands::r, &Operands::y)
                           : product(shape, &Operands::r, &Operands::t, &Operands::y);
  };
  auto time_alone = [&](const std::function<void(int)>& fn) {
    return bench::time_device(fn, stream, samples, 5, sets).median_ms;
  };
  std::vector<bool> activation_layouts = {false};
  if (only) activation_layouts = {only->feature_major};
  else if (!plain) activation_layouts.push_back(true);
  LowRankTiming best;  // best.tried: every pair's time, "token:L+R=0.0188(0.0096+0.0077) ..."
  for (const bool feature_major : activation_layouts) {
    // Each product's candidates timed alone; the fastest of each are then paired.
    std::vector<LowRankLayout> firsts = {{feature_major, false, false}};
    if (only) firsts = {{feature_major, only->l_transposed, false}};
    else if (!plain) firsts.push_back({feature_major, true, false});
    LowRankLayout way = firsts.front();
    double one = 1e30, two = 1e30;
    std::string alone_ms;  // each candidate's time alone: "L=0.0092 Lt=0.0088 R=0.0075 Rt=0.0076"
    for (const LowRankLayout& trial : firsts) {
      const double alone = time_alone(first_fn(trial));
      alone_ms += fmt::format("{}{}={:.4f}", alone_ms.empty() ? "" : " ",
                              trial.l_transposed ? "Lt" : "L", alone);
      if (alone < one) {
        one = alone;
        way = trial;
      }
    }
    LowRankLayout best_second = way;
    for (const bool transposed : {false, true}) {
      if ((plain && transposed) || (only && transposed != only->r_transposed)) continue;
      LowRankLayout trial = way;
      trial.r_transposed = transposed;
      const double alone = time_alone(second_fn(trial));
      alone_ms += fmt::format(" {}={:.4f}", transposed ? "Rt" : "R", alone);
      if (alone < two) {
        two = alone;
        best_second = trial;
      }
    }
    way = best_second;
    const std::function<void(int)> f1 = first_fn(way), f2 = second_fn(way);
    const double both = time_alone([&](int call) {
      f1(call);
      f2(call);
    });
    best.tried += fmt::format("{}{}={:.4f}({:.4f}+{:.4f}) [{}]", best.tried.empty() ? "" : " ", to_string(way), both,
                              one, two, alone_ms);
    if (both < best.ms) {
      best.ms = both;
      best.way = way;
      best.first_ms = one;
      best.second_ms = two;
    }
  }
  return best;
}

}  // namespace

Table run_lowrank_experiment(const LowRankOptions& o, Metadata& summary, const Progress& progress) {
  Table table({"hidden", "rank_ratio", "rank", "tokens", "method", "layout", "ms", "first_ms", "second_ms", "tflops",
               "gbps", "hbm_fraction", "roofline_fraction", "speedup_vs_full", "ideal_speedup", "candidates_ms"});
  gpu::Stream owned_stream;  // a created stream: its calls can be captured and timed as a graph
  cudaStream_t stream = owned_stream.get();
  const double hbm = bench::measure_copy_gbps(stream);
  summary.emplace_back("hbm_copy_gbps", fmt::format("{:.0f}", hbm));
  if (progress) progress(fmt::format("lowrank: device-to-device copy bandwidth {:.0f} GB/s", hbm));
  gpu::DenseGemmCache plain(false), tuned(true);
  const double peak_tflops = measure_gemm_tflops(tuned, o.dtype, stream);
  summary.emplace_back("dense_gemm_tflops", fmt::format("{:.0f}", peak_tflops));
  if (progress) progress(fmt::format("lowrank: dense GEMM ceiling {:.0f} TFLOP/s", peak_tflops));
  // Summary key ("hbm_fraction_geomean_ours_...") -> its geometric mean.
  std::map<std::string, GeometricMean> geomeans;
  const int64_t t = o.tokens;
  for (int64_t d : o.hidden) {
    std::map<std::string, double> full_ms;
    for (double ratio : o.ratios) {
      for (const std::string method : {"plain", "ours"}) {
        const bool plain_way = method == "plain";
        const int64_t exact = std::max<int64_t>(1, static_cast<int64_t>(std::floor(ratio * d + 1e-9)));
        // ours pads the rank with zeros: as the library's adapters do (gpu::padded_rank, a
        // multiple of 16, what the tensor cores need), or to a multiple of 32, 64 or 128 where
        // that runs faster (fewer, fuller tiles); the fastest is kept.
        std::vector<int64_t> ranks = {plain_way ? exact : gpu::padded_rank(exact)};
        if (!plain_way) {
          for (int64_t multiple : {32, 64, 128}) {
            const int64_t padded = (exact + multiple - 1) / multiple * multiple;
            if (std::find(ranks.begin(), ranks.end(), padded) == ranks.end()) ranks.push_back(padded);
          }
        }
        LowRankTiming best;
        int64_t r = ranks.front();
        std::vector<Operands> best_ops;  // the chosen rank's, for timing it again
        std::string tried;
        for (int64_t candidate : ranks) {
          std::vector<Operands> ops = make_operands(t, d, candidate, o.dtype, stream);
          const LowRankTiming p = time_low_rank_pair(plain_way, t, d, candidate, o.dtype, o.samples, ops,
                                                     plain_way ? plain : tuned, stream);
          tried += fmt::format("{}{}{}", tried.empty() ? "" : " ", ranks.size() > 1 ? fmt::format("r{}:", candidate) : "",
                               p.tried);
          if (p.ms < best.ms) {
            best = p;
            r = candidate;
            best_ops = std::move(ops);
          }
        }
        // The fastest of several candidates was timed low by chance more often than not: the
        // choice is timed afresh, and that is what the row reports.
        if (!plain_way) {
          best = time_low_rank_pair(plain_way, t, d, r, o.dtype, o.samples, best_ops, tuned, stream, &best.way);
          tried += fmt::format(" chosen r{} {} again={:.4f}", r, to_string(best.way), best.ms);
        }
        const double ms = best.ms, first_ms = best.first_ms, second_ms = best.second_ms;
        const std::string chosen = to_string(best.way);
        // The bytes of the product asked for (the exact rank): padding adds none that is useful.
        const double bytes = low_rank_bytes(t, d, exact);
        if (ratio == 1.0) full_ms[method] = ms;
        const double gbps = bytes / ms * 1e-6;
        const double flops = 4.0 * t * d * exact;  // the useful work: padding adds none
        const double speedup = full_ms.count(method) ? full_ms[method] / ms : NAN;
        // The roofline: neither bound alone. At ratio 0.05 and d >= 5120 the two products are
        // compute bound (their flops take longer at the GEMM ceiling than their bytes at the
        // copy ceiling), so the copy fraction alone cannot reach 1 there.
        const double floor_ms = std::max(bytes / hbm * 1e-6, flops / peak_tflops * 1e-9);
        table.add_row({d, ratio, r, t, method, chosen, ms, first_ms, second_ms, flops / ms * 1e-9, gbps,
                       gbps / hbm, floor_ms / ms, speedup, 1.0 / ratio, tried});
        if (d >= 4096 && ratio <= 0.05 + 1e-9) {
          for (const auto& [metric, fraction] :
               {std::pair{"hbm_fraction", gbps / hbm}, {"roofline_fraction", floor_ms / ms}}) {
            geomeans[std::string(metric) + "_geomean_" + method + "_d4096plus_ratio_le_0.05"].add(fraction);
          }
        }
        if (progress)
          progress(fmt::format(
              "lowrank d={:5} ratio {:4} rank {:5} {:5} ({})  {:8.4f} ms ({:.4f} + {:.4f})  {:6.0f} GB/s ({:4.1f}% of copy)  [{}]",
              d, ratio, r, method, chosen, ms, first_ms, second_ms, gbps, 100 * gbps / hbm, tried));
      }
    }
  }
  for (const auto& [key, mean] : geomeans) summary.emplace_back(key, fmt::format("{:.3f}", mean.value()));
  return table;
}

}  // namespace slope
