// `slope lowrank`: the paper's low-rank underutilization experiment. Times (X L) R (L: d x r,
// R: r x d, X: t x d) for rank ratios of the hidden size, first with plain cuBLASLt at the
// paper's exact ranks, then the way slope runs it (rank padded with zeros to a multiple of
// 16, 32, 64 or 128, whichever runs fastest; activations and factors stored in the fastest
// layouts; best of cuBLASLt's candidates and their split-K variants), against the copy
// bandwidth and the roofline (copy bandwidth and dense GEMM ceiling).
#pragma once

#include <vector>

#include "slope/core/dtype.hpp"
#include "slope/core/table.hpp"
#include "slope/experiments/spmm_experiment.hpp"
#include "slope/gpu/dense_gemm.hpp"

namespace slope {

struct LowRankOptions : SweepOptions {
  std::vector<double> ratios = {1.0, 0.1, 0.05, 0.02, 0.01};
};

// Columns: hidden, rank_ratio, rank (as run: ours pads it), tokens, method (plain / ours),
// layout (activations token- or feature-major : L or Lt + R or Rt, e.g. "feature:Lt+R"), ms
// (ours: the chosen rank and layout timed again after the choice, so that picking the fastest
// of several noisy timings does not flatter it), first_ms (X L alone), second_ms (T R alone), tflops, gbps, hbm_fraction, roofline_fraction,
// speedup_vs_full, ideal_speedup, candidates_ms (ours: per padded rank "r208:", each
// activation layout's pair with its times, and in brackets every candidate product's time
// alone; then the choice and its second timing). gbps, tflops and the fractions count the bytes and flops of the exact rank
// floor(ratio d): padding adds time, not useful work.
// `summary` gets the measured copy bandwidth and GEMM ceiling and, per method, the
// geometric-mean fractions of the copy bandwidth and of the roofline for d >= 4096 and
// ratio <= 0.05.
Table run_lowrank_experiment(const LowRankOptions& options, Metadata& summary, const Progress& progress);

}  // namespace slope
