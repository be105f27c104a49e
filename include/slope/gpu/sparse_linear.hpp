// Y = X W^T with a 2:4 W held compressed, whole or in square tiles (layouts: see
// sparselt_plan.hpp; the output is feature-major, Y^T m x t row-major, or token-major, Y
// t x m row-major).
//
// Tiling (the paper's strategy for the MLP upsample matrix, W of 4d x d): W is split into
// m / k square k x k tiles, each compressed on its own; one plan (the tile's shape) serves
// every tile, and tile i writes rows [i k, (i + 1) k) of Y^T (columns of Y) in place: no
// copies, no extra kernels.
//
// Wave bands: W split into two bands of rows, the first a multiple of kWaveBandRows, each
// with a plan (and a kernel configuration) of its own, writing its rows of Y^T (columns of Y)
// in place the same way. Where m is not such a multiple, one product leaves its last wave of
// output tiles mostly empty (d = 2560); the bands let the first run whole waves and the second
// pick a kernel for its few rows (docs/gpu-engine.md, "Wave bands").
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <vector>

#include "slope/core/dtype.hpp"
#include "slope/gpu/sparse_engine.hpp"

namespace slope::gpu {

enum class Tiling {
  kNone,       // one compressed W
  kSquare,     // m / k square tiles (needs m a multiple of k, m > k)
  kAuto,       // kNone or kSquare, timed on first use; the faster is kept (remembered by the engine)
  kWaveBands,  // two bands of rows, the first a multiple of kWaveBandRows (needs can_band)
  kAutoBands,  // kNone or kWaveBands, decided like kAuto
};

// A 2048-row band of a 2048-token product fills whole waves of cuSPARSELt's output tiles on
// the H200's 132 SMs; the rule proposes a split that kAutoBands measures, it promises nothing.
constexpr int64_t kWaveBandRows = 2048;

// True when W of m x k can be split into square tiles.
bool can_tile(int64_t m, int64_t k);
// True when W of m rows can be split into wave bands (m > kWaveBandRows, not a multiple of it).
bool can_band(int64_t m);

// Decides kAuto (candidate kSquare) or kAutoBands (candidate kWaveBands) for (m, k, tokens,
// dtype): times the candidate against one W on scratch data once per engine (or tuning cache),
// which remembers the answer.
bool tiling_pays(SparseEngine& engine, int64_t m, int64_t k, int64_t tokens, DType dtype, InputLayout input,
                 cudaStream_t stream, OutputLayout output = OutputLayout::kFeatureMajor,
                 Tiling candidate = Tiling::kSquare);

// The shapes whose plans a SparseLinear of `whole`'s product (its m, k, tokens, dtype, bias,
// layouts, ReLU and row strides) with `tiling` asks `engine` for: one per part; for an automatic
// tiling not yet decided, both candidates' parts and those of the measurement that decides.
// What SparseEngine::prepare_selections takes.
std::vector<SparseShape> sparse_linear_shapes(const SparseEngine& engine, const SparseShape& whole, Tiling tiling);

class SparseLinear {
 public:
  // `tokens` fixes the plan; `tiling` kAuto decides by measurement.
  // `bias`: a device vector of m elements that the epilogue adds (fixed for the layer's life:
  // see SparsePlan); `relu`: the epilogue applies max(x, 0) last.
  // `in_ld`, `out_ld`: a token-major X's or Y's row stride in elements, when wider than k or
  // m (0: k, m), e.g. a buffer shared with an adapter's columns.
  SparseLinear(SparseEngine& engine, int64_t m, int64_t k, int64_t tokens, DType dtype, Tiling tiling,
               cudaStream_t stream, const void* bias = nullptr, InputLayout input = InputLayout::kTokenMajor,
               bool relu = false, OutputLayout output = OutputLayout::kFeatureMajor, int64_t in_ld = 0,
               int64_t out_ld = 0);
  SparseLinear(const SparseLinear&) = delete;
  SparseLinear& operator=(const SparseLinear&) = delete;

  // Compresses a dense, row-wise 2:4 W (m x k row-major). Asynchronous on `stream`.
  void set_weight(const void* dense_pruned, cudaStream_t stream);
  // Y = X W^T (+ beta Y) (+ bias), then ReLU if constructed so; X and Y token-major or
  // feature-major as constructed.
  void forward(const void* x, void* y, cudaStream_t stream, float beta = 0.0f) const;
  // The same product without the ReLU epilogue (a layer whose adapter must be added before
  // the ReLU). Its plans are made on the first call of prepare_without_relu.
  void prepare_without_relu(cudaStream_t stream);
  void forward_without_relu(const void* x, void* y, cudaStream_t stream) const;

  // The parts W is split into (1 when whole), and each part's rows.
  int64_t tiles() const { return static_cast<int64_t>(part_rows_.size()); }
  int64_t part_rows(int64_t i) const { return part_rows_[static_cast<size_t>(i)]; }
  // The cuSPARSELt kernel configuration part i runs, for results that name what they timed.
  int part_config_id(int64_t i) const { return plans_[static_cast<size_t>(i)]->config_id(); }
  int64_t rows() const { return m_; }
  int64_t cols() const { return k_; }
  size_t compressed_bytes() const;
  // The compressed buffer of tile i (the whole W when untiled).
  const CompressedWeight& part(int64_t i) const { return *parts_[static_cast<size_t>(i)]; }
  CompressedWeight& part(int64_t i) { return *parts_[static_cast<size_t>(i)]; }

 private:
  std::vector<const SparsePlan*> make_plans(bool relu, cudaStream_t stream);
  // Part i's plan writes rows [part_start(i), part_start(i) + part_rows(i)) of Y^T (columns of Y).
  int64_t part_start(int64_t i) const { return part_starts_[static_cast<size_t>(i)]; }
  void run(const std::vector<const SparsePlan*>& plans, const void* x, void* y, cudaStream_t stream, float beta) const;

  SparseEngine& engine_;
  const void* bias_;
  bool relu_;
  int64_t m_, k_, tokens_, in_ld_, out_ld_;
  InputLayout input_;
  OutputLayout output_;
  DType dtype_;
  std::vector<int64_t> part_rows_, part_starts_;
  // Per part: the engine's shared plan for its shape (one for all square tiles unless there
  // is a bias), or for a token-major output a plan of the part's own, kept in own_plans_.
  std::vector<const SparsePlan*> plans_;
  std::vector<std::unique_ptr<SparsePlan>> own_plans_;
  std::vector<const SparsePlan*> plans_without_relu_;
  std::vector<std::unique_ptr<CompressedWeight>> parts_;
};

}  // namespace slope::gpu
