#include "slope/experiments/layer_training_experiment.hpp"

#include <cmath>
#include <functional>
#include <memory>

#include <fmt/format.h>

#include "slope/bench/timer.hpp"
#include "slope/core/geometric_mean.hpp"
#include "slope/experiments/block_shapes.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/slope_linear.hpp"
#include "slope/gpu/stream.hpp"

namespace slope {
namespace {

// One layer stack's activations: input X, per layer output Y^T, its gradient dY^T, and dX^T.
struct Activations {
  gpu::DeviceBuffer x;
  std::vector<gpu::DeviceBuffer> out, grad_out, grad_in;
};

Activations make_activations(const std::vector<BlockLinear>& defs, int64_t t, DType dtype, uint64_t seed,
                             cudaStream_t stream) {
  Activations a;
  a.x = gpu::DeviceBuffer(t * defs.front().d_in * 2);
  gpu::fill_uniform(a.x.get(), t * defs.front().d_in, seed, 1.0f, dtype, stream);
  for (size_t j = 0; j < defs.size(); ++j) {
    a.out.emplace_back(t * defs[j].d_out * 2);
    a.grad_out.emplace_back(t * defs[j].d_out * 2);
    a.grad_in.emplace_back(t * defs[j].d_in * 2);
    gpu::fill_uniform(a.out.back().get(), t * defs[j].d_out, seed + 1 + j, 1.0f, dtype, stream);
    gpu::fill_uniform(a.grad_out.back().get(), t * defs[j].d_out, seed + 11 + j, 1.0f, dtype, stream);
  }
  return a;
}

// Phases of a layer stack as callables over one operand set.
struct Phases {
  std::function<void(int)> forward, grad_input, grad_weight;
};

}  // namespace

Table run_layer_training_experiment(const LayerTrainingOptions& o, gpu::SparseEngine& engine,
                                    gpu::DenseGemmCache& dense, Metadata& summary, const Progress& progress) {
  Table table({"hidden", "shape", "tokens", "phase", "dense_ms", "sparse_ms", "speedup", "ceiling"});
  gpu::Stream owned_stream;  // a created stream: its calls can be captured and timed as a graph
  cudaStream_t stream = owned_stream.get();
  const int64_t t_max = *std::max_element(o.tokens.begin(), o.tokens.end());
  GeometricMean block_speedups;  // MLP blocks, d >= 4096, the most tokens
  double min_total = 1e30;
  for (int64_t t : o.tokens)
    for (int64_t d : o.hidden)
      for (const std::string& shape : block_shape_names()) {
        const auto defs = block_linears(shape, d);
        double bytes = 2.0 * t * defs.front().d_in;
        for (const auto& l : defs) bytes += 2.0 * (l.d_out * l.d_in + 2.0 * t * l.d_out + t * l.d_in);
        const int sets = bench::rotation_count(bytes, 8);

        // SLoPe layers.
        gpu::TrainingWorkspace ws(engine, dense);
        std::vector<std::vector<std::unique_ptr<gpu::SlopeLinear>>> slope(static_cast<size_t>(sets));
        std::vector<Activations> sacts, dacts;
        // Dense layers: pruned weights held dense, cuBLASLt for all three products.
        std::vector<std::vector<gpu::DeviceBuffer>> dense_w(static_cast<size_t>(sets));
        std::vector<gpu::DeviceBuffer> dense_dw;
        std::vector<const gpu::DenseGemm*> fwd, gin, gw;
        for (const auto& l : defs) {
          gpu::GemmShape f = gpu::feature_major_shape(t, l.d_out, l.d_in, o.dtype, l.input == gpu::InputLayout::kTokenMajor);
          f.relu = l.relu;
          fwd.push_back(&dense.get(f, stream));
          gin.push_back(&dense.get(gpu::input_grad_shape(t, l.d_out, l.d_in, o.dtype), stream));
          gw.push_back(&dense.get(
              gpu::weight_grad_shape(t, l.d_out, l.d_in, o.dtype, l.input == gpu::InputLayout::kTokenMajor), stream));
          dense_dw.emplace_back(l.d_out * l.d_in * 2);
        }
        for (int i = 0; i < sets; ++i) {
          sacts.push_back(make_activations(defs, t, o.dtype, 100 + 31 * i, stream));
          dacts.push_back(make_activations(defs, t, o.dtype, 100 + 31 * i, stream));
          for (size_t j = 0; j < defs.size(); ++j) {
            const auto& l = defs[j];
            gpu::DeviceBuffer w(l.d_out * l.d_in * 2);
            gpu::fill_uniform(w.get(), l.d_out * l.d_in, 500 + 7 * i + j, 0.05f, o.dtype, stream);
            auto layer = std::make_unique<gpu::SlopeLinear>(
                ws, gpu::TrainingLinearSpec{l.d_out, l.d_in, t, o.dtype, l.input, false, l.relu}, stream);
            layer->init_weights(w.get(), nullptr, stream);
            slope[static_cast<size_t>(i)].push_back(std::move(layer));
            gpu::prune_rows_2to4(w.get(), w.get(), nullptr, l.d_out, l.d_in, o.dtype, stream);
            dense_w[static_cast<size_t>(i)].push_back(std::move(w));
          }
        }
        const size_t n = defs.size();
        auto relu_bwd = [&](Activations& a) {
          // MLP block: the upsample's ReLU between the two layers.
          if (n == 2) gpu::relu_backward(a.grad_out[0].get(), a.out[0].get(), t * defs[0].d_out, o.dtype, stream);
        };
        Phases sp{
            [&](int c) {
              auto& a = sacts[static_cast<size_t>(c % sets)];
              auto& L = slope[static_cast<size_t>(c % sets)];
              const void* in = a.x.get();
              for (size_t j = 0; j < n; ++j) {
                L[j]->forward(in, a.out[j].get(), stream);
                in = a.out[j].get();
              }
            },
            [&](int c) {
              auto& a = sacts[static_cast<size_t>(c % sets)];
              auto& L = slope[static_cast<size_t>(c % sets)];
              for (size_t j = n; j-- > 0;) {
                // The gradient flowing into layer j-1 is layer j's input gradient.
                void* dx = j > 0 ? a.grad_out[j - 1].get() : a.grad_in[0].get();
                L[j]->grad_input(a.grad_out[j].get(), dx, stream);
                if (j == 1) relu_bwd(a);
              }
            },
            [&](int c) {
              auto& a = sacts[static_cast<size_t>(c % sets)];
              auto& L = slope[static_cast<size_t>(c % sets)];
              for (size_t j = 0; j < n; ++j) L[j]->grad_weight(j == 0 ? a.x.get() : a.out[j - 1].get(), a.grad_out[j].get(),
                                                               false, stream);
            }};
        Phases dp{
            [&](int c) {
              auto& a = dacts[static_cast<size_t>(c % sets)];
              auto& W = dense_w[static_cast<size_t>(c % sets)];
              const void* in = a.x.get();
              for (size_t j = 0; j < n; ++j) {
                fwd[j]->run(in, W[j].get(), a.out[j].get(), stream);
                in = a.out[j].get();
              }
            },
            [&](int c) {
              auto& a = dacts[static_cast<size_t>(c % sets)];
              auto& W = dense_w[static_cast<size_t>(c % sets)];
              for (size_t j = n; j-- > 0;) {
                void* dx = j > 0 ? a.grad_out[j - 1].get() : a.grad_in[0].get();
                gin[j]->run(a.grad_out[j].get(), W[j].get(), dx, stream);
                if (j == 1) relu_bwd(a);
              }
            },
            [&](int c) {
              auto& a = dacts[static_cast<size_t>(c % sets)];
              for (size_t j = 0; j < n; ++j)
                gw[j]->run(j == 0 ? a.x.get() : a.out[j - 1].get(), a.grad_out[j].get(), dense_dw[j].get(), stream);
            }};
        const std::vector<std::pair<std::string, double>> ceilings = {
            {"forward", 2.0}, {"grad_input", 2.0}, {"grad_weight", 1.0}, {"total", 1.5}};
        std::vector<std::function<void(int)>> sfn = {sp.forward, sp.grad_input, sp.grad_weight};
        std::vector<std::function<void(int)>> dfn = {dp.forward, dp.grad_input, dp.grad_weight};
        sfn.push_back([&](int c) { sp.forward(c); sp.grad_input(c); sp.grad_weight(c); });
        dfn.push_back([&](int c) { dp.forward(c); dp.grad_input(c); dp.grad_weight(c); });
        for (size_t p = 0; p < ceilings.size(); ++p) {
          const bench::PairTiming paired = bench::time_pair(dfn[p], sfn[p], stream, o.samples, 5, sets);
          const double dms = paired.a.median_ms, sms = paired.b.median_ms, speedup = paired.ratio_median;
          table.add_row({d, shape, t, ceilings[p].first, dms, sms, speedup, ceilings[p].second});
          if (ceilings[p].first == "total") {
            if (shape == "mlp_block" && d >= 4096 && t == t_max) block_speedups.add(speedup);
            if (d >= 2048) min_total = std::min(min_total, speedup);
            if (progress)
              progress(fmt::format("layer training d={:5} {:10} t={:5} dense {:8.4f} ms  sparse {:8.4f} ms  speedup {:5.2f}",
                                   d, shape, t, dms, sms, speedup));
          }
        }
      }
  if (!block_speedups.empty())
    summary.emplace_back("mlp_block_total_speedup_geomean_d4096plus_t" + std::to_string(t_max),
                         fmt::format("{:.4f}", block_speedups.value()));
  if (min_total < 1e29) summary.emplace_back("min_total_speedup_d2048plus", fmt::format("{:.4f}", min_total));
  return table;
}

}  // namespace slope
