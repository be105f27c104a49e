#include "slope/experiments/training_block_timing.hpp"

#include <cmath>
#include <functional>
#include <memory>

#include "slope/bench/timer.hpp"
#include "slope/core/error.hpp"
#include "slope/gpu/adamw.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/slope_linear.hpp"
#include "slope/gpu/stream.hpp"

namespace slope {
namespace {

// One copy of the block's activations: the inputs X (the first layer's, or every layer's
// when the block is not chained), per layer the output Y^T, its gradient dY^T and the input
// gradient dX^T (only where no earlier layer takes it as its dY^T).
struct Activations {
  std::vector<gpu::DeviceBuffer> x, out, grad_out, grad_in;
};

Activations make_activations(const std::vector<BlockLinear>& defs, bool chained, int64_t t, DType dtype,
                             uint64_t seed, cudaStream_t stream) {
  Activations a;
  for (size_t j = 0; j < defs.size(); ++j) {
    if (j == 0 || !chained) {
      a.x.emplace_back(t * defs[j].d_in * 2);
      gpu::fill_uniform(a.x.back().get(), t * defs[j].d_in, seed + 21 + j, 1.0f, dtype, stream);
      a.grad_in.emplace_back(t * defs[j].d_in * 2);
    }
    a.out.emplace_back(t * defs[j].d_out * 2);
    a.grad_out.emplace_back(t * defs[j].d_out * 2);
    gpu::fill_uniform(a.out.back().get(), t * defs[j].d_out, seed + 1 + j, 1.0f, dtype, stream);
    gpu::fill_uniform(a.grad_out.back().get(), t * defs[j].d_out, seed + 11 + j, 1.0f, dtype, stream);
  }
  return a;
}

// Where layer j reads its input and writes its input gradient.
const void* input_of(const Activations& a, bool chained, size_t j) {
  return chained && j > 0 ? a.out[j - 1].get() : a.x[j].get();
}
void* input_grad_of(Activations& a, bool chained, size_t j) {
  return chained && j > 0 ? a.grad_out[j - 1].get() : a.grad_in[j].get();
}

// The three phases of one side as calls over operand copy `c % sets`. The weight gradient
// writes the gradient, or adds to it (`accumulate`: a micro-batch after the first of a step).
struct Phases {
  std::function<void(int)> forward, grad_input;
  std::function<void(int, bool)> grad_weight;
};

}  // namespace

AdamWConfig training_step_config() {
  AdamWConfig c;
  c.lr = 1e-4f;
  c.weight_decay = 0.1f;
  c.max_grad_norm = 1.0f;
  return c;
}

std::vector<TrainingPhaseRow> time_training_block(const std::vector<BlockLinear>& defs,
                                                  const TrainingBlockOptions& o, gpu::SparseEngine& engine,
                                                  gpu::DenseGemmCache& dense) {
  require(!defs.empty(), "a training block needs a layer");
  gpu::Stream owned_stream;  // a created stream: its calls can be captured and timed as a graph
  cudaStream_t stream = owned_stream.get();
  const int64_t t = o.tokens;
  const size_t n = defs.size();
  double bytes = 0;
  for (size_t j = 0; j < n; ++j) {
    const auto& l = defs[j];
    bytes += 2.0 * (l.d_out * l.d_in + 2.0 * t * l.d_out + t * l.d_in);
    if (j == 0 || !o.chained) bytes += 2.0 * t * l.d_in;
  }
  const int sets = bench::rotation_count(bytes, 8);

  // SLoPe layers, and dense layers holding the same pruned weights dense, cuBLASLt for all
  // three products.
  gpu::TrainingWorkspace ws(engine, dense);
  std::vector<std::vector<std::unique_ptr<gpu::SlopeLinear>>> slope(static_cast<size_t>(sets));
  std::vector<Activations> sacts, dacts;
  std::vector<std::vector<gpu::DeviceBuffer>> dense_w(static_cast<size_t>(sets));
  std::vector<gpu::DeviceBuffer> dense_dw;
  std::vector<const gpu::DenseGemm*> fwd, gin, gw;
  for (const auto& l : defs) {
    const bool token_major_in = l.input == gpu::InputLayout::kTokenMajor;
    gpu::GemmShape f = gpu::feature_major_shape(t, l.d_out, l.d_in, o.dtype, token_major_in);
    f.relu = l.relu;
    fwd.push_back(&dense.get(f, stream));
    gin.push_back(&dense.get(gpu::input_grad_shape(t, l.d_out, l.d_in, o.dtype), stream));
    gw.push_back(&dense.get(gpu::weight_grad_shape(t, l.d_out, l.d_in, o.dtype, token_major_in), stream));
    dense_dw.emplace_back(l.d_out * l.d_in * 2);
  }
  for (int i = 0; i < sets; ++i) {
    sacts.push_back(make_activations(defs, o.chained, t, o.dtype, 100 + 31 * i, stream));
    dacts.push_back(make_activations(defs, o.chained, t, o.dtype, 100 + 31 * i, stream));
    for (size_t j = 0; j < n; ++j) {
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
  // Chained, the gradient reaching layer j - 1 passes back through its ReLU.
  auto relu_backward_into = [&](Activations& a, size_t j) {
    if (o.chained && j > 0 && defs[j - 1].relu)
      gpu::relu_backward(a.grad_out[j - 1].get(), a.out[j - 1].get(), t * defs[j - 1].d_out, o.dtype, stream);
  };
  auto set = [&](int c) { return static_cast<size_t>(c % sets); };
  Phases sp{[&](int c) {
              auto& a = sacts[set(c)];
              for (size_t j = 0; j < n; ++j) slope[set(c)][j]->forward(input_of(a, o.chained, j), a.out[j].get(), stream);
            },
            [&](int c) {
              auto& a = sacts[set(c)];
              for (size_t j = n; j-- > 0;) {
                slope[set(c)][j]->grad_input(a.grad_out[j].get(), input_grad_of(a, o.chained, j), stream);
                relu_backward_into(a, j);
              }
            },
            [&](int c, bool accumulate) {
              auto& a = sacts[set(c)];
              for (size_t j = 0; j < n; ++j)
                slope[set(c)][j]->grad_weight(input_of(a, o.chained, j), a.grad_out[j].get(), accumulate, stream);
            }};
  Phases dp{[&](int c) {
              auto& a = dacts[set(c)];
              for (size_t j = 0; j < n; ++j)
                fwd[j]->run(input_of(a, o.chained, j), dense_w[set(c)][j].get(), a.out[j].get(), stream);
            },
            [&](int c) {
              auto& a = dacts[set(c)];
              for (size_t j = n; j-- > 0;) {
                gin[j]->run(a.grad_out[j].get(), dense_w[set(c)][j].get(), input_grad_of(a, o.chained, j), stream);
                relu_backward_into(a, j);
              }
            },
            [&](int c, bool accumulate) {
              auto& a = dacts[set(c)];
              for (size_t j = 0; j < n; ++j)
                gw[j]->run(input_of(a, o.chained, j), a.grad_out[j].get(), dense_dw[j].get(), stream, 1.0f,
                           accumulate ? 1.0f : 0.0f);
            }};
  const std::vector<std::pair<std::string, double>> ceilings = {
      {"forward", 2.0}, {"grad_input", 2.0}, {"grad_weight", 1.0}, {"total", 1.5}};
  // A micro-batch: forward, input gradients, weight gradients.
  auto micro_batch = [](const Phases& side, int c, bool accumulate) {
    side.forward(c);
    side.grad_input(c);
    side.grad_weight(c, accumulate);
  };
  std::vector<std::function<void(int)>> sfn = {sp.forward, sp.grad_input, [&](int c) { sp.grad_weight(c, false); },
                                               [&](int c) { micro_batch(sp, c, false); }};
  std::vector<std::function<void(int)>> dfn = {dp.forward, dp.grad_input, [&](int c) { dp.grad_weight(c, false); },
                                               [&](int c) { micro_batch(dp, c, false); }};
  std::vector<TrainingPhaseRow> rows;
  for (size_t p = 0; p < ceilings.size(); ++p) {
    const bench::PairTiming paired = bench::time_pair(dfn[p], sfn[p], stream, o.samples, 5, sets);
    rows.push_back({ceilings[p].first, paired.a.median_ms, paired.b.median_ms, paired.ratio_median, ceilings[p].second});
  }
  if (o.accumulation <= 0) return rows;

  // Whole training steps on the first operand copy: the layers' weights move, which the
  // timing does not mind. Dense: full weights, full gradients, AdamW over all of them;
  // SLoPe: AdamW over the kept values (half the elements), then the refresh of W^{R,C}.
  gpu::AdamW dense_opt(o.dtype, training_step_config()), sparse_opt(o.dtype, training_step_config());
  for (size_t j = 0; j < n; ++j) {
    const std::string name = "linear" + std::to_string(j);
    dense_opt.add(dense_w[0][j].get(), dense_dw[j].get(), defs[j].d_out * defs[j].d_in, true, name);
    slope[0][j]->add_to(sparse_opt, name);
  }
  const int acc = o.accumulation;
  auto dense_step = [&](int) {
    for (int m = 0; m < acc; ++m) micro_batch(dp, 0, m > 0);
    dense_opt.step(stream, 1.0f / acc);
  };
  auto sparse_step = [&](int) {
    for (int m = 0; m < acc; ++m) micro_batch(sp, 0, m > 0);
    sparse_opt.step(stream, 1.0f / acc);
    for (auto& layer : slope[0]) layer->refresh(stream);
  };
  const bench::PairTiming step = bench::time_pair_eager(dense_step, sparse_step, stream, o.samples, 2);
  rows.push_back({"step", step.a.median_ms, step.b.median_ms, step.ratio_median, NAN});
  return rows;
}

}  // namespace slope
