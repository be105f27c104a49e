#include "slope/gpu/configuration_search.hpp"

#include <functional>
#include <limits>
#include <memory>
#include <string>

#include "slope/bench/timer.hpp"
#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/kernels.hpp"

namespace slope::gpu {

SearchOperands::SearchOperands(const SparsePlan& plan, cudaStream_t stream) {
  const SparseShape& s = plan.shape();
  const bool token_major_out = s.output == OutputLayout::kTokenMajor;
  // A token-major input's rows may be wider than k (the next layer's adapter features).
  const int64_t x_elems = s.n * (s.in_ld > 0 ? s.in_ld : s.k);
  DeviceBuffer w(s.m * s.k * 2), x(x_elems * 2);
  fill_uniform(w.get(), s.m * s.k, 1, 1.0f, s.dtype, stream);
  fill_uniform(x.get(), x_elems, 2, 1.0f, s.dtype, stream);
  prune_rows_2to4(w.get(), w.get(), nullptr, s.m, s.k, s.dtype, stream);
  // A token-major output's rows may be wider than m (a tile of a wider layer).
  const int64_t y_elems = s.n * (token_major_out && s.out_ld > 0 ? s.out_ld : s.m);
  // A token-major plan reads one W only (sparselt_plan.hpp): each trial compresses the dense W
  // through itself, once per set where it rotates W with X and Y (WeightPerSet), so
  // the sets are counted with a compressed W's bytes (9/16 of the dense ones) all the same.
  std::unique_ptr<CompressedWeight> cw;
  if (!token_major_out) {
    cw = std::make_unique<CompressedWeight>(plan.context(), s.m, s.k, s.dtype);
    cw->compress(w.get(), stream);
  }
  const double w_bytes = cw ? static_cast<double>(cw->bytes()) : 2.0 * s.m * s.k * 9.0 / 16.0;
  const int sets = bench::rotation_count(w_bytes + 2.0 * (x_elems + y_elems), 16);
  for (int i = 0; i < sets; ++i) {
    if (cw) {
      w_.emplace_back(CompressedWeight::allocation_bytes(cw->bytes()));
      SLOPE_CHECK(cudaMemcpyAsync(w_.back().get(), cw->data(), cw->bytes(), cudaMemcpyDeviceToDevice, stream));
    }
    x_.emplace_back(x_elems * 2);
    y_.emplace_back(y_elems * 2);
    SLOPE_CHECK(cudaMemcpyAsync(x_.back().get(), x.get(), x_elems * 2, cudaMemcpyDeviceToDevice, stream));
  }
  if (token_major_out) dense_w_ = std::move(w);
  SLOPE_CHECK(cudaStreamSynchronize(stream));  // the temporaries die here
}

namespace {

// Milliseconds per product, `product(set)` running it on operand set `set`: the sets taken in
// turn, so that each call reads operands the previous ones pushed out of the L2.
double time_over_sets(const SearchOperands& ops, cudaStream_t stream, int samples, int warmup,
                      const std::function<void(int set)>& product) {
  return bench::time_device([&](int call) { product(call % ops.count()); }, stream, samples, warmup, ops.count())
      .median_ms;
}

// Milliseconds per product of `plan`, by default with enough samples to rank kernel
// configurations. W is rotated with X and Y, or fixed when `w` is given.
double time_plan(const SparsePlan& plan, const SearchOperands& ops, cudaStream_t stream, const void* w = nullptr,
                 int samples = 7, int warmup = 3) {
  return time_over_sets(ops, stream, samples, warmup,
                        [&](int set) { plan.matmul(w ? w : ops.w(set), ops.x(set), ops.y(set), stream); });
}

}  // namespace

WeightPerSet::WeightPerSet(const SparsePlan& plan, const SearchOperands& operands, cudaStream_t stream)
    : plan_(plan) {
  // A feature-major plan reads any W compressed for its shape: all of them time the sets' own
  // (SearchOperands::w), as the scan does.
  if (plan.shape().output != OutputLayout::kTokenMajor) return;
  for (int set = 0; set < operands.count(); ++set) {
    if (set > 0) more_.push_back(std::make_unique<SparsePlan>(plan.selection()));
    w_.push_back(std::make_unique<CompressedWeight>(plan_of(set)));
    w_.back()->compress(operands.dense_w(), stream);
  }
}

double WeightPerSet::time(const SearchOperands& operands, cudaStream_t stream, int samples, int warmup) const {
  return time_over_sets(operands, stream, samples, warmup, [&](int set) {
    if (w_.empty())
      plan_.matmul(operands.w(set), operands.x(set), operands.y(set), stream);
    else
      plan_of(set).matmul(w_[static_cast<size_t>(set)]->data(), operands.x(set), operands.y(set), stream);
  });
}

namespace {

// Times every kernel configuration but `best`'s on a fresh plan and returns the fastest,
// `best` included.
TuningEntry scan_configurations(const SparsePlan& plan, const SearchOperands& ops, cudaStream_t stream,
                                TuningEntry best) {
  const bool token_major = plan.shape().output == OutputLayout::kTokenMajor;
  const int count = plan.config_count();
  for (int id = 0; id < count; ++id) {
    if (id == best.config_id) continue;
    TuningEntry candidate;
    candidate.config_id = id;
    candidate.split_k = -1;
    std::unique_ptr<SparsePlan> trial;
    try {
      trial = std::make_unique<SparsePlan>(plan.context(), plan.shape(), &candidate);
    } catch (const Error&) {
      continue;  // a configuration this shape cannot take (KernelConfigurations)
    }
    const double ms =
        token_major ? WeightPerSet(*trial, ops, stream).time(ops, stream) : time_plan(*trial, ops, stream);
    if (ms < best.search_ms) {
      best = candidate;
      best.search_ms = ms;
    }
  }
  return best;
}

// A token-major output's fp16 plans take ~0.25 s each to initialise on the H200 where each has
// a selection of its own, as each configuration tried needs (row-major outputs: < 1 ms), so a
// scan of all 52 configurations costs ~15 s per shape. cuSPARSELt's
// own search tries them all inside one plan in under a second. It runs on `plan` with a W
// compressed through it; that plan then reads only this W, which is harmless because the
// engine drops it once it has chosen (SparseEngine::configuration). Where the search fails
// (INTERNAL_ERROR at d = 768 upsample), the scan decides.
TuningEntry search_token_major(SparsePlan& plan, const SearchOperands& ops, cudaStream_t stream) {
  try {
    CompressedWeight w(plan);
    w.compress(ops.dense_w(), stream);
    TuningEntry best = plan.search(w.data(), ops.x(0), ops.y(0), stream);
    best.search_ms = time_plan(plan, ops, stream, w.data());
    return best;
  } catch (const Error&) {
    TuningEntry none;
    none.config_id = -1;
    none.search_ms = std::numeric_limits<double>::infinity();
    const TuningEntry best = scan_configurations(plan, ops, stream, none);
    require(best.config_id >= 0, "no sparse kernel configuration ran for " + plan.shape().key());
    return best;
  }
}

}  // namespace

TuningEntry search_configurations(SparsePlan& plan, const SearchOperands& ops, cudaStream_t stream) {
  if (plan.shape().output == OutputLayout::kTokenMajor) return search_token_major(plan, ops, stream);
  // cuSPARSELt's own search first (it also weighs split-K), then every kernel configuration
  // timed on its own with CUDA events: the library's search times few iterations and, for
  // the small shapes of the paper (d <= 1024, ~10 us products), its pick is often not the
  // fastest. These plans are cheap to make (< 1 ms), so the full scan costs milliseconds to a
  // second per shape, once.
  TuningEntry best = plan.search(ops.w(0), ops.x(0), ops.y(0), stream);
  best.search_ms = time_plan(plan, ops, stream);
  return scan_configurations(plan, ops, stream, best);
}

}  // namespace slope::gpu
