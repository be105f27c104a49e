#include "slope/experiments/lowrank_experiment.hpp"

#include <cmath>
#include <functional>
#include <map>

#include <fmt/format.h>

#include "slope/bench/timer.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/device_info.hpp"
#include "slope/gpu/inference_linear.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/low_rank_gemm.hpp"
#include "slope/gpu/stream.hpp"

namespace slope {
namespace {

struct Operands {
  gpu::DeviceBuffer x, l, r, t, y;
};

// How the operands are stored. T (t x r) = X L and Y (t x d) = T R. Activations (X, T, Y)
// token-major (X row-major t x d, as the paper's PyTorch) or feature-major (X^T row-major
// d x t, slope's layer convention); each factor stored as given (L: d x r, R: r x d) or
// transposed (L^T, R^T: the weights of two linear layers). The factors and the activations
// between slope's layers are slope's own, so it may store them either way: the fastest is
// kept.
struct Layout {
  bool feature_major = false;
  bool l_transposed = false;
  bool r_transposed = false;
};

// Column-major cuBLASLt shapes of the two products (run(a, b, d) operand order below).
gpu::GemmShape first_shape(const Layout& w, int64_t t, int64_t d, int64_t r, DType dtype) {
  using gpu::Op;
  if (!w.feature_major)  // T^T (r x t) = L^T X^T: a = L, b = X
    return {w.l_transposed ? Op::kT : Op::kN, Op::kN, r, t, d, w.l_transposed ? d : r, d, r, dtype, false, false};
  // T (t x r) = X L: a = X (column-major t x d), b = L
  return {Op::kN, w.l_transposed ? Op::kN : Op::kT, t, r, d, t, w.l_transposed ? d : r, t, dtype, false, false};
}

gpu::GemmShape second_shape(const Layout& w, int64_t t, int64_t d, int64_t r, DType dtype) {
  using gpu::Op;
  if (!w.feature_major)  // Y^T (d x t) = R^T T^T: a = R, b = T
    return {w.r_transposed ? Op::kT : Op::kN, Op::kN, d, t, r, w.r_transposed ? r : d, r, d, dtype, false, false};
  // Y (t x d) = T R: a = T (column-major t x r), b = R
  return {Op::kN, w.r_transposed ? Op::kN : Op::kT, t, d, r, t, w.r_transposed ? r : d, t, dtype, false, false};
}

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

}  // namespace

Table run_lowrank_experiment(const LowRankOptions& o, Metadata& summary, const Progress& progress) {
  Table table({"hidden", "rank_ratio", "rank", "tokens", "method", "layout", "ms", "first_ms", "second_ms", "tflops",
               "gbps", "hbm_fraction", "roofline_fraction", "speedup_vs_full", "ideal_speedup", "candidates_ms"});
  gpu::Stream owned_stream;  // a created stream: its calls can be captured and timed as a graph
  cudaStream_t stream = owned_stream.get();
  const double hbm = bench::measure_copy_gbps(stream);
  const int sm_count = gpu::query_device_info().sm_count;
  summary.emplace_back("hbm_copy_gbps", fmt::format("{:.0f}", hbm));
  if (progress) progress(fmt::format("lowrank: device-to-device copy bandwidth {:.0f} GB/s", hbm));
  gpu::DenseGemmCache plain(false), tuned(true);
  const double peak_tflops = measure_gemm_tflops(tuned, o.dtype, stream);
  summary.emplace_back("dense_gemm_tflops", fmt::format("{:.0f}", peak_tflops));
  if (progress) progress(fmt::format("lowrank: dense GEMM ceiling {:.0f} TFLOP/s", peak_tflops));
  std::map<std::string, std::pair<double, int>> floor_log, roofline_log;  // method -> (sum of logs, count)
  const int64_t t = o.tokens;
  for (int64_t d : o.hidden) {
    std::map<std::string, double> full_ms;
    for (double ratio : o.ratios) {
      for (const std::string method : {"plain", "ours"}) {
        const int64_t exact = std::max<int64_t>(1, static_cast<int64_t>(std::floor(ratio * d + 1e-9)));
        const int64_t r = method == "plain" ? exact : gpu::padded_rank(exact);
        gpu::DenseGemmCache& cache = method == "plain" ? plain : tuned;
        const double bytes = 2.0 * (t * d + d * r + 2.0 * t * r + r * d + t * d);
        const int sets = bench::rotation_count(bytes);
        std::vector<Operands> ops(static_cast<size_t>(sets));
        for (int i = 0; i < sets; ++i) {
          Operands& op = ops[static_cast<size_t>(i)];
          op.x = gpu::DeviceBuffer(t * d * 2);
          op.l = gpu::DeviceBuffer(d * r * 2);
          op.r = gpu::DeviceBuffer(r * d * 2);
          op.t = gpu::DeviceBuffer(t * r * 2);
          op.y = gpu::DeviceBuffer(t * d * 2);
          gpu::fill_uniform(op.x.get(), t * d, 10 + i, 1.0f, o.dtype, stream);
          gpu::fill_uniform(op.l.get(), d * r, 20 + i, 0.05f, o.dtype, stream);
          gpu::fill_uniform(op.r.get(), r * d, 30 + i, 0.05f, o.dtype, stream);
        }
        // plain: the paper's way (token-major activations, factors as d x r and r x d,
        // cuBLASLt's first choice); ours: for each activation layout, each product's
        // candidates (each factor stored as given or transposed, on the best of cuBLASLt's
        // candidates, and token-major also on slope's own kernel) timed alone, the fastest
        // of each then paired and timed together; the faster pair is kept.
        //
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
        // slope's kernel on token-major activations, the factor stored transposed (k
        // contiguous): T (t x r) = X Lt^T, Y (t x d) = T Rt^T.
        auto own_product = [&](const gpu::LowRankGemmShape& shape, gpu::LowRankGemmPlan plan, Member a, Member b,
                               Member out) -> std::function<void(int)> {
          gpu::validate(shape, plan);
          return [&, shape, plan, a, b, out](int call) {
            Operands& op = ops[static_cast<size_t>(call % sets)];
            gpu::low_rank_gemm(shape, plan, (op.*a).get(), (op.*b).get(), (op.*out).get(), stream);
          };
        };
        struct Candidate {
          std::string name;  // "L", "Lt", "Lt/slope", "R", ...
          std::function<void(int)> fn;
        };
        auto time_alone = [&](const std::function<void(int)>& fn) {
          return bench::time_device(fn, stream, o.samples, 5, sets).median_ms;
        };
        // The fastest candidate alone; appends "name=ms" of each to `alone_ms`.
        auto fastest = [&](const std::vector<Candidate>& candidates, std::string& alone_ms) -> std::pair<size_t, double> {
          size_t best = 0;
          double best_ms = 1e30;
          for (size_t i = 0; i < candidates.size(); ++i) {
            const double alone = time_alone(candidates[i].fn);
            alone_ms += fmt::format("{}{}={:.4f}", alone_ms.empty() ? "" : " ", candidates[i].name, alone);
            if (alone < best_ms) {
              best_ms = alone;
              best = i;
            }
          }
          return {best, best_ms};
        };
        std::vector<bool> activation_layouts = {false};
        if (method == "ours") activation_layouts.push_back(true);
        double ms = 1e30, first_ms = NAN, second_ms = NAN;
        std::string chosen, tried;  // tried: every pair's time, "token:L+R=0.0188(0.0096+0.0077) ..."
        for (const bool feature_major : activation_layouts) {
          std::vector<Candidate> firsts, seconds;  // T = X L, Y = T R
          for (const bool transposed : {false, true}) {
            if (method == "plain" && transposed) continue;
            const Layout w{feature_major, transposed, transposed};
            const gpu::GemmShape s1 = first_shape(w, t, d, r, o.dtype), s2 = second_shape(w, t, d, r, o.dtype);
            // Operands (X, L) and (T, R) feature-major, (L, X) and (R, T) token-major.
            firsts.push_back({transposed ? "Lt" : "L", feature_major
                                                           ? product(s1, &Operands::x, &Operands::l, &Operands::t)
                                                           : product(s1, &Operands::l, &Operands::x, &Operands::t)});
            seconds.push_back({transposed ? "Rt" : "R", feature_major
                                                            ? product(s2, &Operands::t, &Operands::r, &Operands::y)
                                                            : product(s2, &Operands::r, &Operands::t, &Operands::y)});
          }
          if (method == "ours" && !feature_major) {
            const gpu::LowRankGemmShape s1{t, r, d, d, d, r, o.dtype}, s2{t, d, r, r, r, d, o.dtype};
            const gpu::LowRankGemmPlan p1 = gpu::plan_low_rank_gemm(s1, sm_count);
            for (int splits : {2, 4, 8})
              if (p1.block_n <= 128)
                firsts.push_back({fmt::format("Lt/slope-s{}", splits),
                                  own_product(s1, {p1.block_n, splits, false}, &Operands::x, &Operands::l, &Operands::t)});
            gpu::LowRankGemmPlan p2 = gpu::plan_low_rank_gemm(s2, sm_count);
            seconds.push_back({"Rt/slope", own_product(s2, p2, &Operands::t, &Operands::r, &Operands::y)});
            p2.direct_store = false;
            seconds.push_back({"Rt/slope-staged", own_product(s2, p2, &Operands::t, &Operands::r, &Operands::y)});
          }
          std::string alone_ms;  // each candidate's time alone: "L=0.0092 Lt=0.0088 R=0.0075 Rt=0.0076"
          const auto [one_i, one] = fastest(firsts, alone_ms);
          const auto [two_i, two] = fastest(seconds, alone_ms);
          const std::function<void(int)>& f1 = firsts[one_i].fn;
          const std::function<void(int)>& f2 = seconds[two_i].fn;
          const double both = time_alone([&](int call) {
            f1(call);
            f2(call);
          });
          const std::string way =
              std::string(feature_major ? "feature:" : "token:") + firsts[one_i].name + "+" + seconds[two_i].name;
          tried += fmt::format("{}{}={:.4f}({:.4f}+{:.4f}) [{}]", tried.empty() ? "" : " ", way, both, one, two,
                               alone_ms);
          if (both < ms) {
            ms = both;
            chosen = way;
            first_ms = one;
            second_ms = two;
          }
        }
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
          floor_log[method].first += std::log(gbps / hbm);
          floor_log[method].second += 1;
          roofline_log[method].first += std::log(floor_ms / ms);
          roofline_log[method].second += 1;
        }
        if (progress)
          progress(fmt::format(
              "lowrank d={:5} ratio {:4} rank {:5} {:5} ({})  {:8.4f} ms ({:.4f} + {:.4f})  {:6.0f} GB/s ({:4.1f}% of copy)  [{}]",
              d, ratio, r, method, chosen, ms, first_ms, second_ms, gbps, 100 * gbps / hbm, tried));
      }
    }
  }
  for (const auto& [method, acc] : floor_log)
    summary.emplace_back("hbm_fraction_geomean_" + method + "_d4096plus_ratio_le_0.05",
                         fmt::format("{:.3f}", std::exp(acc.first / acc.second)));
  for (const auto& [method, acc] : roofline_log)
    summary.emplace_back("roofline_fraction_geomean_" + method + "_d4096plus_ratio_le_0.05",
                         fmt::format("{:.3f}", std::exp(acc.first / acc.second)));
  return table;
}

}  // namespace slope
