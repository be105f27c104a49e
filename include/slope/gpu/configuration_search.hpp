// Timing kernel configurations for one problem shape: random operands rotated past the L2 as
// the benchmarks rotate them, and the search that picks a plan's configuration from them
// (cuSPARSELt's own, then slope's timings). SparseEngine runs it once per shape and GPU.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <vector>

#include "slope/core/tuning_cache.hpp"
#include "slope/gpu/device_buffer.hpp"
#include "slope/gpu/sparselt_plan.hpp"

namespace slope::gpu {

// Random operands of one shape for timing kernel configurations: a pruned, compressed
// weight and an X, copied into enough sets (each with its own Y) to rotate past the L2, as
// the benchmarks time. Picked on L2-resident operands, a configuration can be the fastest
// only while the operands stay in the cache.
class SearchOperands {
 public:
  // W is compressed through `plan` when its output is token-major (see CompressedWeight).
  SearchOperands(const SparsePlan& plan, cudaStream_t stream);
  int count() const { return static_cast<int>(x_.size()); }
  const void* w(int set) const { return w_[static_cast<size_t>(set)].get(); }  // feature-major output only
  const void* dense_w() const { return dense_w_.get(); }                      // token-major output only
  const void* x(int set) const { return x_[static_cast<size_t>(set)].get(); }
  void* y(int set) const { return y_[static_cast<size_t>(set)].get(); }

 private:
  std::vector<DeviceBuffer> w_, x_, y_;
  DeviceBuffer dense_w_;  // pruned, uncompressed
};

// A fresh token-major plan's W rotated past the L2 with X and Y, as the experiments and a
// model's layers run it. Such a plan reads only the W compressed through it (sparselt_plan.hpp),
// so every operand set gets a plan of the fresh plan's selection (0.01-0.2 ms each) and a W
// compressed through that plan. With one W left in the L2, d = 768 attention had run 0.7 us
// faster than with W read from HBM, the time that separated its kernels in `spmm`
// (docs/gpu-engine.md). A feature-major plan reads any W compressed for its shape, so it
// times the operands' own compressed W of each set instead, and makes nothing.
class WeightPerSet {
 public:
  // `plan` must not have multiplied yet, and must outlive this.
  WeightPerSet(const SparsePlan& plan, const SearchOperands& operands, cudaStream_t stream);
  WeightPerSet(const WeightPerSet&) = delete;
  WeightPerSet& operator=(const WeightPerSet&) = delete;
  // Milliseconds per product, the sets taken in turn (median of `samples`).
  double time(const SearchOperands& operands, cudaStream_t stream, int samples = 7, int warmup = 3) const;

 private:
  const SparsePlan& plan_of(int set) const { return set == 0 ? plan_ : *more_[static_cast<size_t>(set - 1)]; }
  const SparsePlan& plan_;                            // set 0's
  std::vector<std::unique_ptr<SparsePlan>> more_;     // plans of its selection: sets 1, 2, ...
  std::vector<std::unique_ptr<CompressedWeight>> w_;  // one per set (token-major); destroyed before the plans
};

// The fastest configuration for `plan`'s shape: cuSPARSELt's search (on set 0), then every
// kernel configuration timed with CUDA events over the rotated sets; `plan` keeps the library
// search's choice. A token-major output takes the library's search alone (its plans are slow
// to make), run with a W compressed through `plan`, and scans only where that search fails.
TuningEntry search_configurations(SparsePlan& plan, const SearchOperands& operands, cudaStream_t stream);

}  // namespace slope::gpu
