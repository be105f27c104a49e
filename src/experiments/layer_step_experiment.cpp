#include "slope/experiments/layer_step_experiment.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "slope/bench/timer.hpp"
#include "slope/core/geometric_mean.hpp"
#include "slope/experiments/training_block_timing.hpp"
#include "slope/gpu/adamw.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/slope_linear.hpp"
#include "slope/model/memory_model.hpp"

namespace slope {
namespace {

// The block's activations, feature-major after the first layer: X (t x d, token-major), H^T
// (4d x t), Y^T (d x t), and their gradients. Shared by both sides (never read as results).
struct BlockActivations {
  gpu::DeviceBuffer x, h, y, dy, dh, dx;
  BlockActivations(int64_t d, int64_t t, DType dtype, cudaStream_t stream)
      : x(t * d * 2), h(4 * d * t * 2), y(d * t * 2), dy(d * t * 2), dh(4 * d * t * 2), dx(d * t * 2) {
    gpu::fill_uniform(x.get(), t * d, 1, 1.0f, dtype, stream);
    gpu::fill_uniform(dy.get(), d * t, 2, 1e-3f, dtype, stream);
  }
};

// The dense MLP block: weights, full gradients, and a fused AdamW over both.
class DenseBlock {
 public:
  DenseBlock(gpu::DenseGemmCache& dense, int64_t d, int64_t t, DType dtype, cudaStream_t stream)
      : d_(d), t_(t), dtype_(dtype), w_up_(4 * d * d * 2), w_down_(4 * d * d * 2), g_up_(4 * d * d * 2),
        g_down_(4 * d * d * 2), opt_(dtype, training_step_config()) {
    gpu::fill_uniform(w_up_.get(), 4 * d * d, 3, 0.02f, dtype, stream);
    gpu::fill_uniform(w_down_.get(), 4 * d * d, 4, 0.02f, dtype, stream);
    gpu::GemmShape up = gpu::feature_major_shape(t, 4 * d, d, dtype, true);
    up.relu = true;
    fwd_up_ = &dense.get(up, stream);
    fwd_down_ = &dense.get(gpu::feature_major_shape(t, d, 4 * d, dtype, false), stream);
    gin_up_ = &dense.get(gpu::input_grad_shape(t, 4 * d, d, dtype), stream);
    gin_down_ = &dense.get(gpu::input_grad_shape(t, d, 4 * d, dtype), stream);
    gw_up_ = &dense.get(gpu::weight_grad_shape(t, 4 * d, d, dtype, true), stream);
    gw_down_ = &dense.get(gpu::weight_grad_shape(t, d, 4 * d, dtype, false), stream);
    opt_.add(w_up_.get(), g_up_.get(), 4 * d * d, true, "up.weight");
    opt_.add(w_down_.get(), g_down_.get(), 4 * d * d, true, "down.weight");
  }
  void forward(BlockActivations& a, cudaStream_t stream) {
    fwd_up_->run(a.x.get(), w_up_.get(), a.h.get(), stream);
    fwd_down_->run(a.h.get(), w_down_.get(), a.y.get(), stream);
  }
  void backward(BlockActivations& a, bool accumulate, cudaStream_t stream) {
    const float beta = accumulate ? 1.0f : 0.0f;
    gin_down_->run(a.dy.get(), w_down_.get(), a.dh.get(), stream);
    gw_down_->run(a.h.get(), a.dy.get(), g_down_.get(), stream, 1.0f, beta);
    gpu::relu_backward(a.dh.get(), a.h.get(), 4 * d_ * t_, dtype_, stream);
    gin_up_->run(a.dh.get(), w_up_.get(), a.dx.get(), stream);
    gw_up_->run(a.x.get(), a.dh.get(), g_up_.get(), stream, 1.0f, beta);
  }
  void optimizer_step(float grad_scale, cudaStream_t stream) { opt_.step(stream, grad_scale); }

 private:
  int64_t d_, t_;
  DType dtype_;
  gpu::DeviceBuffer w_up_, w_down_, g_up_, g_down_;
  gpu::AdamW opt_;
  const gpu::DenseGemm *fwd_up_, *fwd_down_, *gin_up_, *gin_down_, *gw_up_, *gw_down_;
};

// The SLoPe MLP block: two SlopeLinear layers (and their adapters) and AdamW over their kept
// values, biases-free like the dense block.
class SlopeBlock {
 public:
  SlopeBlock(gpu::SparseEngine& engine, gpu::DenseGemmCache& dense, int64_t d, int64_t t, int64_t rank, DType dtype,
             cudaStream_t stream)
      : d_(d), t_(t), dtype_(dtype), ws_(engine, dense),
        up_(ws_, {4 * d, d, t, dtype, gpu::InputLayout::kTokenMajor, false, true}, stream),
        down_(ws_, {d, 4 * d, t, dtype, gpu::InputLayout::kFeatureMajor, false, false}, stream),
        opt_(dtype, training_step_config()) {
    gpu::DeviceBuffer w(4 * d * d * 2);
    gpu::fill_uniform(w.get(), 4 * d * d, 5, 0.02f, dtype, stream);
    up_.init_weights(w.get(), nullptr, stream);
    gpu::fill_uniform(w.get(), 4 * d * d, 6, 0.02f, dtype, stream);
    down_.init_weights(w.get(), nullptr, stream);
    if (rank > 0) {
      up_.enable_adapter(rank, 7, 0.02f, stream);
      down_.enable_adapter(rank, 8, 0.02f, stream);
    }
    up_.add_to(opt_, "up");
    down_.add_to(opt_, "down");
  }
  void forward(BlockActivations& a, cudaStream_t stream) {
    up_.forward(a.x.get(), a.h.get(), stream);
    down_.forward(a.h.get(), a.y.get(), stream);
  }
  void backward(BlockActivations& a, bool accumulate, cudaStream_t stream) {
    down_.backward(a.h.get(), a.dy.get(), a.dh.get(), accumulate, stream);
    gpu::relu_backward(a.dh.get(), a.h.get(), 4 * d_ * t_, dtype_, stream);
    up_.backward(a.x.get(), a.dh.get(), a.dx.get(), accumulate, stream);
  }
  void optimizer_step(float grad_scale, cudaStream_t stream) { opt_.step(stream, grad_scale); }
  void update_only(cudaStream_t stream) { opt_.update(stream, 1.0f); }
  void refresh(cudaStream_t stream) {
    up_.refresh(stream);
    down_.refresh(stream);
  }
  void refresh_by_recompress(cudaStream_t stream) {
    up_.refresh_by_recompress(stream);
    down_.refresh_by_recompress(stream);
  }
  void change_column_masks(cudaStream_t stream) {
    up_.change_column_mask(stream);
    down_.change_column_mask(stream);
  }
  bool in_place() const { return up_.values_in_place() && down_.values_in_place(); }
  // Counted bytes of the optimizer update (kept values and adapters) plus the refresh.
  double update_refresh_bytes() const { return opt_.update_bytes() + up_.refresh_bytes() + down_.refresh_bytes(); }

 private:
  int64_t d_, t_;
  DType dtype_;
  gpu::TrainingWorkspace ws_;
  gpu::SlopeLinear up_, down_;
  gpu::AdamW opt_;
};

double median_ms(const std::function<void(int)>& fn, cudaStream_t stream, int samples) {
  // Eager launches: the optimizer step reads the gradient norm on the host (to skip a step
  // with NaN/Inf gradients), which a CUDA graph cannot hold.
  return bench::time_device_eager(fn, stream, samples, 2).median_ms;
}

}  // namespace

Table run_layer_step_experiment(const LayerStepOptions& o, gpu::SparseEngine& engine, gpu::DenseGemmCache& dense,
                                Metadata& summary, const Progress& progress) {
  Table table({"hidden", "tokens", "accumulation", "adapter_ratio", "rank", "dense_ms", "sparse_ms", "speedup",
               "dense_forward_ms", "sparse_forward_ms", "dense_backward_ms", "sparse_backward_ms",
               "dense_optimizer_ms", "sparse_optimizer_ms", "refresh_ms", "mask_change_ms", "optimizer_refresh_gbps",
               "recompress_baseline_gbps", "hbm_gbps", "refresh_in_place"});
  cudaStream_t stream = nullptr;
  const double hbm = bench::measure_copy_gbps(stream);
  progress(fmt::format("layer step: copy bandwidth {:.0f} GB/s", hbm));
  const int64_t t = o.tokens;
  GeometricMean step_speedups, adapter_step_ratios;  // d >= 4096, accumulation 4
  double min_fraction = 1e30;
  for (int64_t d : o.hidden) {
    BlockActivations acts(d, t, o.dtype, stream);
    DenseBlock dense_block(dense, d, t, o.dtype, stream);
    // Dense phases and steps, per accumulation (independent of the adapter ratio).
    const double dense_fwd = median_ms([&](int) { dense_block.forward(acts, stream); }, stream, o.samples);
    const double dense_bwd = median_ms([&](int) { dense_block.backward(acts, true, stream); }, stream, o.samples);
    const double dense_opt = median_ms([&](int) { dense_block.optimizer_step(1.0f, stream); }, stream, o.samples);
    std::map<int, double> dense_step;
    for (int acc : o.accumulation)
      dense_step[acc] = median_ms(
          [&](int) {
            for (int m = 0; m < acc; ++m) {
              dense_block.forward(acts, stream);
              dense_block.backward(acts, m > 0, stream);
            }
            dense_block.optimizer_step(1.0f / acc, stream);
          },
          stream, o.samples);
    std::map<int, double> plain_step;  // the SLoPe step without adapters, per accumulation
    for (double ratio : o.adapter_ratios) {
      const int64_t rank = ratio > 0 ? adapter_rank(ratio, d) : 0;
      SlopeBlock block(engine, dense, d, t, rank, o.dtype, stream);
      const double fwd = median_ms([&](int) { block.forward(acts, stream); }, stream, o.samples);
      const double bwd = median_ms([&](int) { block.backward(acts, true, stream); }, stream, o.samples);
      const double opt = median_ms([&](int) { block.optimizer_step(1.0f, stream); }, stream, o.samples);
      const double refresh = median_ms([&](int) { block.refresh(stream); }, stream, o.samples);
      const double update_refresh = median_ms(
          [&](int) {
            block.update_only(stream);
            block.refresh(stream);
          },
          stream, o.samples);
      const double update_recompress = median_ms(
          [&](int) {
            block.update_only(stream);
            block.refresh_by_recompress(stream);
          },
          stream, std::max(3, o.samples / 3));
      const double mask_change = median_ms([&](int) { block.change_column_masks(stream); }, stream,
                                           std::max(3, o.samples / 3));
      const double bytes = block.update_refresh_bytes();
      const double gbps = bytes / (update_refresh * 1e-3) / 1e9;
      const double baseline_gbps = bytes / (update_recompress * 1e-3) / 1e9;
      min_fraction = std::min(min_fraction, gbps / hbm);
      for (int acc : o.accumulation) {
        const double sparse = median_ms(
            [&](int) {
              for (int m = 0; m < acc; ++m) {
                block.forward(acts, stream);
                block.backward(acts, m > 0, stream);
              }
              block.optimizer_step(1.0f / acc, stream);
              block.refresh(stream);
            },
            stream, o.samples);
        const double dms = dense_step[acc];
        table.add_row({d, t, static_cast<int64_t>(acc), ratio, rank, dms, sparse, dms / sparse, dense_fwd, fwd,
                       dense_bwd, bwd, dense_opt, opt, refresh, mask_change, gbps, baseline_gbps, hbm,
                       std::string(block.in_place() ? "yes" : "no")});
        if (rank == 0) plain_step[acc] = sparse;
        if (acc == 4 && d >= 4096) {
          if (rank == 0)
            step_speedups.add(dms / sparse);
          else if (std::abs(ratio - 1.0 / 64) < 1e-9 && plain_step.count(acc))
            adapter_step_ratios.add(sparse / plain_step[acc]);
        }
        if (progress)
          progress(fmt::format("layer step d={:5} acc={:2} adapter={:.4f} dense {:9.3f} ms  sparse {:9.3f} ms  "
                               "speedup {:5.2f}  update+refresh {:6.0f} GB/s ({:.0f}% of copy), recompress {:5.0f} GB/s, "
                               "mask change {:.2f} ms",
                               d, acc, ratio, dms, sparse, dms / sparse, gbps, 100 * gbps / hbm, baseline_gbps,
                               mask_change));
      }
    }
  }
  if (!step_speedups.empty())
    summary.emplace_back("step_speedup_geomean_d4096plus_acc4", fmt::format("{:.4f}", step_speedups.value()));
  if (!adapter_step_ratios.empty())
    summary.emplace_back("adapter_1.56pct_extra_step_time_geomean_d4096plus_acc4",
                         fmt::format("{:.4f}", adapter_step_ratios.value() - 1.0));
  if (min_fraction < 1e29) summary.emplace_back("optimizer_refresh_min_fraction_of_hbm", fmt::format("{:.3f}", min_fraction));
  summary.emplace_back("hbm_copy_gbps", fmt::format("{:.0f}", hbm));
  return table;
}

}  // namespace slope
