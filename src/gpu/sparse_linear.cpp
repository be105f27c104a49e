#include "slope/gpu/sparse_linear.hpp"

#include <algorithm>
#include <string>

#include "slope/bench/timer.hpp"
#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/kernels.hpp"

namespace slope::gpu {
bool can_tile(int64_t m, int64_t k) { return m > k && m % k == 0; }
bool can_band(int64_t m) { return m > kWaveBandRows && m % kWaveBandRows != 0; }

namespace {

// The rows of each part W of m x k is split into: square tiles, wave bands, or whole.
std::vector<int64_t> split_rows(int64_t m, int64_t k, Tiling split) {
  if (split == Tiling::kSquare) return std::vector<int64_t>(static_cast<size_t>(m / k), k);
  if (split == Tiling::kWaveBands) {
    const int64_t first = m / kWaveBandRows * kWaveBandRows;
    return {first, m - first};
  }
  return {m};
}

// A part of `whole` with `rows` of its rows. Where W is split, a token-major part writes its
// columns of the whole layer's rows of Y: out_ld apart, or m.
SparseShape part_shape(const SparseShape& whole, int64_t rows, bool split) {
  SparseShape part = whole;
  part.m = rows;
  if (split && whole.output == OutputLayout::kTokenMajor && whole.out_ld == 0) part.out_ld = whole.m;
  return part;
}

// The automatic choices are measured on the product without epilogue or row strides.
SparseShape measured_shape(const SparseShape& whole) {
  return {whole.m, whole.k, whole.n, whole.dtype, false, whole.input, false, whole.output};
}

// True when W of m x k can be split as `candidate` (square tiles or wave bands) proposes.
bool can_split(int64_t m, int64_t k, Tiling candidate) {
  return candidate == Tiling::kWaveBands ? can_band(m) : can_tile(m, k);
}

std::string tiling_decision_key(const SparseEngine& engine, const SparseShape& measured, Tiling candidate) {
  return engine.tuning_key(measured) + (candidate == Tiling::kWaveBands ? "|bands-decision" : "|tiling-decision");
}

}  // namespace

std::vector<SparseShape> sparse_linear_shapes(const SparseEngine& engine, const SparseShape& whole, Tiling tiling) {
  std::vector<SparseShape> shapes;
  const auto add_parts = [&](const SparseShape& product, Tiling split) {
    const std::vector<int64_t> rows = split_rows(product.m, product.k, split);
    for (int64_t r : rows) shapes.push_back(part_shape(product, r, rows.size() > 1));
  };
  const bool automatic = tiling == Tiling::kAuto || tiling == Tiling::kAutoBands;
  const Tiling candidate = tiling == Tiling::kAutoBands ? Tiling::kWaveBands : Tiling::kSquare;
  if (!automatic) {
    add_parts(whole, tiling);
  } else if (whole.bias || whole.relu || !can_split(whole.m, whole.k, candidate)) {
    add_parts(whole, Tiling::kNone);
  } else if (const auto known = engine.decision(tiling_decision_key(engine, measured_shape(whole), candidate))) {
    add_parts(whole, *known ? candidate : Tiling::kNone);
  } else {
    // Undecided: tiling_pays times both on the measured shape, then the layer takes one.
    add_parts(measured_shape(whole), Tiling::kNone);
    add_parts(measured_shape(whole), candidate);
    add_parts(whole, Tiling::kNone);
    add_parts(whole, candidate);
  }
  return shapes;
}

bool tiling_pays(SparseEngine& engine, int64_t m, int64_t k, int64_t tokens, DType dtype, InputLayout input,
                 cudaStream_t stream, OutputLayout output, Tiling candidate) {
  require(candidate == Tiling::kSquare || candidate == Tiling::kWaveBands,
          "tiling_pays weighs square tiles or wave bands against one W");
  if (!can_split(m, k, candidate)) return false;
  const std::string key = tiling_decision_key(engine, {m, k, tokens, dtype, false, input, false, output}, candidate);
  if (const auto known = engine.decision(key)) return *known;
  SparseLinear whole(engine, m, k, tokens, dtype, Tiling::kNone, stream, nullptr, input, false, output);
  SparseLinear split(engine, m, k, tokens, dtype, candidate, stream, nullptr, input, false, output);
  DeviceBuffer w(m * k * 2), x(tokens * k * 2), y(tokens * m * 2);
  fill_uniform(w.get(), m * k, 7, 1.0f, dtype, stream);
  fill_uniform(x.get(), tokens * k, 8, 1.0f, dtype, stream);
  prune_rows_2to4(w.get(), w.get(), nullptr, m, k, dtype, stream);
  whole.set_weight(w.get(), stream);
  split.set_weight(w.get(), stream);
  // Alternate the two twice and keep each one's best, so clock ramp-up favours neither.
  const auto median_ms = [&](const SparseLinear& layer) {
    return bench::time_device([&](int) { layer.forward(x.get(), y.get(), stream); }, stream, 10).median_ms;
  };
  double t_whole = 1e30, t_split = 1e30;
  for (int round = 0; round < 2; ++round) {
    t_whole = std::min(t_whole, median_ms(whole));
    t_split = std::min(t_split, median_ms(split));
  }
  const bool pays = t_split < t_whole;
  engine.remember_decision(key, pays, pays ? t_split : t_whole);
  return pays;
}

SparseLinear::SparseLinear(SparseEngine& engine, int64_t m, int64_t k, int64_t tokens, DType dtype, Tiling tiling,
                           cudaStream_t stream, const void* bias, InputLayout input, bool relu, OutputLayout output,
                           int64_t in_ld, int64_t out_ld)
    : engine_(engine), bias_(bias), relu_(relu), m_(m), k_(k), tokens_(tokens), in_ld_(in_ld), out_ld_(out_ld),
      input_(input), output_(output), dtype_(dtype) {
  // The whole product's shape, checked before any tiling decision is timed (each part's plan
  // checks its own again).
  SparseShape whole{m, k, tokens, dtype, bias != nullptr, input, relu, output};
  whole.in_ld = in_ld;
  whole.out_ld = out_ld;
  validate_sparse_shape(whole);
  if (tiling == Tiling::kSquare)
    require(can_tile(m, k), "square tiling needs the rows of W (" + std::to_string(m) +
                                ") to be a multiple of its columns (" + std::to_string(k) + ")");
  if (tiling == Tiling::kWaveBands)
    require(can_band(m), "wave bands need the rows of W (" + std::to_string(m) + ") above " +
                             std::to_string(kWaveBandRows) + " and not a multiple of it");
  // The automatic choices are measured on a layer without an epilogue and apply to that only.
  const bool measurable = bias == nullptr && !relu;
  const bool square = tiling == Tiling::kSquare ||
                      (tiling == Tiling::kAuto && measurable &&
                       tiling_pays(engine, m, k, tokens, dtype, input, stream, output, Tiling::kSquare));
  const bool bands = tiling == Tiling::kWaveBands ||
                     (tiling == Tiling::kAutoBands && measurable &&
                      tiling_pays(engine, m, k, tokens, dtype, input, stream, output, Tiling::kWaveBands));
  part_rows_ = split_rows(m, k, square ? Tiling::kSquare : bands ? Tiling::kWaveBands : Tiling::kNone);
  for (int64_t start = 0; int64_t rows : part_rows_) {
    part_starts_.push_back(start);
    start += rows;
  }
  plans_ = make_plans(relu, stream);
  // A token-major output's fp16 kernels read W as its own plan compresses it (sparselt_plan.hpp).
  for (int64_t i = 0; i < tiles(); ++i)
    parts_.push_back(output == OutputLayout::kTokenMajor
                         ? std::make_unique<CompressedWeight>(*plans_[static_cast<size_t>(i)])
                         : std::make_unique<CompressedWeight>(engine.context(), part_rows(i), k, dtype));
}

void SparseLinear::set_weight(const void* dense_pruned, cudaStream_t stream) {
  const auto* base = static_cast<const uint8_t*>(dense_pruned);
  // Part i is rows [part_start(i), part_start(i) + part_rows(i)) of W: contiguous in row-major order.
  for (int64_t i = 0; i < tiles(); ++i) parts_[static_cast<size_t>(i)]->compress(base + part_start(i) * k_ * 2, stream);
}

void SparseLinear::forward(const void* x, void* y, cudaStream_t stream, float beta) const {
  run(plans_, x, y, stream, beta);
}

std::vector<const SparsePlan*> SparseLinear::make_plans(bool relu, cudaStream_t stream) {
  // Part i adds the bias rows it computes.
  const bool token_major_out = output_ == OutputLayout::kTokenMajor;
  SparseShape whole{m_, k_, tokens_, dtype_, bias_ != nullptr, input_, relu, output_};
  whole.in_ld = in_ld_;
  whole.out_ld = out_ld_;
  std::vector<const SparsePlan*> plans;
  for (int64_t i = 0; i < tiles(); ++i) {
    const SparseShape shape = part_shape(whole, part_rows(i), tiles() > 1);
    const void* bias = bias_ ? static_cast<const uint8_t*>(bias_) + part_start(i) * 2 : nullptr;
    if (token_major_out) {
      own_plans_.push_back(engine_.plan_for_one_weight(shape, stream, bias));
      plans.push_back(own_plans_.back().get());
    } else {
      plans.push_back(&engine_.plan(shape, stream, bias));
    }
  }
  return plans;
}

void SparseLinear::prepare_without_relu(cudaStream_t stream) {
  // Its plans would multiply a W compressed through other plans: not yet checked on a GPU for
  // the token-major output, whose plans serve one weight each (sparselt_plan.hpp).
  require(output_ == OutputLayout::kFeatureMajor, "forward_without_relu needs a feature-major output");
  if (relu_ && plans_without_relu_.empty()) plans_without_relu_ = make_plans(false, stream);
}

void SparseLinear::forward_without_relu(const void* x, void* y, cudaStream_t stream) const {
  if (!relu_) return forward(x, y, stream);
  require(!plans_without_relu_.empty(), "forward_without_relu: call prepare_without_relu first");
  run(plans_without_relu_, x, y, stream, 0.0f);
}

void SparseLinear::run(const std::vector<const SparsePlan*>& plans, const void* x, void* y, cudaStream_t stream,
                       float beta) const {
  auto* out = static_cast<uint8_t*>(y);
  // Part i's output starts at row part_start(i) of Y^T, or at that column of Y.
  const int64_t row_elems = output_ == OutputLayout::kTokenMajor ? 1 : tokens_;
  for (int64_t i = 0; i < tiles(); ++i)
    plans[static_cast<size_t>(i)]->matmul(parts_[static_cast<size_t>(i)]->data(), x,
                                          out + part_start(i) * row_elems * 2, stream, beta);
}

size_t SparseLinear::compressed_bytes() const {
  size_t total = 0;
  for (const auto& p : parts_) total += p->bytes();
  return total;
}

}  // namespace slope::gpu
