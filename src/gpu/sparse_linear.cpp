#include "slope/gpu/sparse_linear.hpp"

#include <algorithm>
#include <string>

#include "slope/bench/timer.hpp"
#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/kernels.hpp"

namespace slope::gpu {
bool can_tile(int64_t m, int64_t k) { return m > k && m % k == 0; }

bool tiling_pays(SparseEngine& engine, int64_t m, int64_t k, int64_t tokens, DType dtype, InputLayout input,
                 cudaStream_t stream, OutputLayout output) {
  if (!can_tile(m, k)) return false;
  // The decision is stored beside the plans' configurations, under its own key; config_id 1
  // means "tiles are faster".
  const std::string key = engine.tuning_key({m, k, tokens, dtype, false, input, false, output}) + "|tiling-decision";
  TuningCache* cache = engine.tuning_cache();
  if (cache) {
    if (const auto hit = cache->find(key)) return hit->config_id == 1;
  }
  SparseLinear whole(engine, m, k, tokens, dtype, Tiling::kNone, stream, nullptr, input, false, output);
  SparseLinear tiles(engine, m, k, tokens, dtype, Tiling::kSquare, stream, nullptr, input, false, output);
  DeviceBuffer w(m * k * 2), x(tokens * k * 2), y(tokens * m * 2);
  fill_uniform(w.get(), m * k, 7, 1.0f, dtype, stream);
  fill_uniform(x.get(), tokens * k, 8, 1.0f, dtype, stream);
  prune_rows_2to4(w.get(), w.get(), nullptr, m, k, dtype, stream);
  whole.set_weight(w.get(), stream);
  tiles.set_weight(w.get(), stream);
  // Alternate the two twice and keep each one's best, so clock ramp-up favours neither.
  double t_whole = 1e30, t_tiles = 1e30;
  for (int round = 0; round < 2; ++round) {
    t_whole = std::min(t_whole, bench::time_device([&](int) { whole.forward(x.get(), y.get(), stream); }, stream, 10).median_ms);
    t_tiles = std::min(t_tiles, bench::time_device([&](int) { tiles.forward(x.get(), y.get(), stream); }, stream, 10).median_ms);
  }
  const bool pays = t_tiles < t_whole;
  if (cache) {
    TuningEntry e;
    e.config_id = pays ? 1 : 0;
    e.search_ms = pays ? t_tiles : t_whole;
    cache->put(key, e);
    cache->save();
  }
  return pays;
}

SparseLinear::SparseLinear(SparseEngine& engine, int64_t m, int64_t k, int64_t tokens, DType dtype, Tiling tiling,
                           cudaStream_t stream, const void* bias, InputLayout input, bool relu, OutputLayout output)
    : engine_(engine), bias_(bias), relu_(relu), m_(m), k_(k), tokens_(tokens), input_(input), output_(output),
      dtype_(dtype), tile_rows_(m) {
  if (tiling == Tiling::kSquare)
    require(can_tile(m, k), "square tiling needs the rows of W (" + std::to_string(m) +
                                ") to be a multiple of its columns (" + std::to_string(k) + ")");
  const bool tile = tiling == Tiling::kSquare ||
                    (tiling == Tiling::kAuto && bias == nullptr && !relu &&
                     tiling_pays(engine, m, k, tokens, dtype, input, stream, output));
  if (tile) {
    tiles_ = m / k;
    tile_rows_ = k;
  }
  plans_ = make_plans(relu, stream);
  // A token-major output's fp16 kernels read W as its own plan compresses it (sparse_engine.hpp).
  for (int64_t i = 0; i < tiles_; ++i)
    parts_.push_back(output == OutputLayout::kTokenMajor
                         ? std::make_unique<CompressedWeight>(*plans_[static_cast<size_t>(i)])
                         : std::make_unique<CompressedWeight>(engine.context(), tile_rows_, k, dtype));
}

void SparseLinear::set_weight(const void* dense_pruned, cudaStream_t stream) {
  const auto* base = static_cast<const uint8_t*>(dense_pruned);
  // Tile i is rows [i * tile_rows, (i + 1) * tile_rows) of W: contiguous in row-major order.
  for (int64_t i = 0; i < tiles_; ++i) parts_[static_cast<size_t>(i)]->compress(base + i * tile_rows_ * k_ * 2, stream);
}

void SparseLinear::forward(const void* x, void* y, cudaStream_t stream, float beta) const {
  run(plans_, x, y, stream, beta);
}

std::vector<const SparsePlan*> SparseLinear::make_plans(bool relu, cudaStream_t stream) {
  // Tile i adds bias rows [i * tile_rows, (i + 1) * tile_rows). A tile's token-major output
  // rows are the whole layer's rows: m apart.
  const bool token_major_out = output_ == OutputLayout::kTokenMajor;
  const SparseShape shape{tile_rows_, k_, tokens_, dtype_, bias_ != nullptr, input_, relu, output_,
                          token_major_out && tiles_ > 1 ? m_ : 0};
  std::vector<const SparsePlan*> plans;
  for (int64_t i = 0; i < tiles_; ++i) {
    const void* bias = bias_ ? static_cast<const uint8_t*>(bias_) + i * tile_rows_ * 2 : nullptr;
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
  // the token-major output, whose plans serve one weight each (sparse_engine.hpp).
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
  // Tile i's output starts at row i * tile_rows of Y^T, or at that column of Y.
  const int64_t tile_step = output_ == OutputLayout::kTokenMajor ? tile_rows_ : tile_rows_ * tokens_;
  for (int64_t i = 0; i < tiles_; ++i)
    plans[static_cast<size_t>(i)]->matmul(parts_[static_cast<size_t>(i)]->data(), x, out + i * tile_step * 2, stream,
                                          beta);
}

size_t SparseLinear::compressed_bytes() const {
  size_t total = 0;
  for (const auto& p : parts_) total += p->bytes();
  return total;
}

}  // namespace slope::gpu
