#include "slope/experiments/memory_check_experiment.hpp"

#include <cuda_runtime.h>

#include <memory>

#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/device_buffer.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/slope_linear.hpp"
#include "slope/model/memory_model.hpp"

namespace slope {
namespace {

constexpr int64_t kTokens = 16;  // plans need a token count; the state does not depend on it

// Everything one decoder layer stores, built from the model's tensor list.
struct LayerState {
  std::vector<std::unique_ptr<gpu::SlopeLinear>> linears;            // training
  std::vector<std::unique_ptr<gpu::SparseLinear>> inference_linears;  // inference
  std::vector<gpu::DeviceBuffer> buffers;
};

int64_t free_bytes() {
  size_t free = 0, total = 0;
  SLOPE_CHECK(cudaMemGetInfo(&free, &total));
  return static_cast<int64_t>(free);
}

LayerState build_layer(const ModelConfig& model, Mode mode, gpu::TrainingWorkspace& ws, cudaStream_t stream) {
  LayerState s;
  for (const TensorSpec& t : parameter_tensors(model, 1)) {
    if (t.count != 1 && t.role == TensorRole::kVector) {
      // Block vectors: fp16 value (+ fp16 gradient and fp32 moments when training).
      s.buffers.emplace_back(t.rows * (mode == Mode::kTraining ? 12 : 2));
      continue;
    }
    if (!is_pruned_linear(t.role)) continue;  // embeddings and other non-block tensors
    const int64_t d_out = t.rows, d_in = t.cols;
    gpu::DeviceBuffer w(d_out * d_in * 2);
    gpu::fill_uniform(w.get(), d_out * d_in, 9, 1.0f, DType::kF16, stream);
    if (mode == Mode::kTraining) {
      auto layer = std::make_unique<gpu::SlopeLinear>(
          ws, gpu::TrainingLinearSpec{d_out, d_in, kTokens, DType::kF16, gpu::InputLayout::kTokenMajor, false, false},
          stream);
      layer->init_weights(w.get(), nullptr, stream);
      s.linears.push_back(std::move(layer));
      s.buffers.emplace_back(d_out * d_in / 2 * 8);  // fp32 exp_avg and exp_avg_sq of the kept half
    } else {
      gpu::prune_rows_2to4(w.get(), w.get(), nullptr, d_out, d_in, DType::kF16, stream);
      auto layer = std::make_unique<gpu::SparseLinear>(ws.engine(), d_out, d_in, kTokens, DType::kF16,
                                                       gpu::Tiling::kNone, stream);
      layer->set_weight(w.get(), stream);
      s.inference_linears.push_back(std::move(layer));
    }
  }
  SLOPE_CHECK(cudaStreamSynchronize(stream));
  return s;
}

}  // namespace

Table run_memory_check_experiment(const MemoryCheckOptions& o, gpu::SparseEngine& engine, gpu::DenseGemmCache& dense) {
  Table table({"model", "layers", "mode", "measured_bytes", "model_bytes", "rel_diff", "cuda_bytes"});
  cudaStream_t stream = nullptr;
  for (const ModelConfig& model : o.models)
    for (Mode mode : {Mode::kTraining, Mode::kInference}) {
      {
        // Warm-up: plans, tuning and cuBLASLt handles exist before the measurement starts.
        gpu::TrainingWorkspace warm(engine, dense);
        build_layer(model, mode, warm, stream);
      }
      const int64_t before = gpu::device_bytes_in_use();
      const int64_t driver_before = free_bytes();
      gpu::TrainingWorkspace ws(engine, dense);
      std::vector<LayerState> layers;
      for (int64_t i = 0; i < o.layers; ++i) layers.push_back(build_layer(model, mode, ws, stream));
      const int64_t measured = gpu::device_bytes_in_use() - before;
      const int64_t driver = driver_before - free_bytes();
      // The model's bytes of N decoder layers: the per-layer difference times N, plus the
      // one shared scratch (training).
      const MemoryQuery q1{Method::kSlope, mode, 0.0, Protocol::kExact, 1, false};
      MemoryQuery q2 = q1;
      q2.layers = 2;
      const MemoryBreakdown one = memory_bytes(model, q1), two = memory_bytes(model, q2);
      const int64_t per_layer = two.total() - one.total();
      const int64_t model_bytes = o.layers * per_layer + one.parts.at("scratch");
      table.add_row({model.name, o.layers, std::string(to_string(mode)), measured, model_bytes,
                     static_cast<double>(measured - model_bytes) / static_cast<double>(model_bytes), driver});
    }
  return table;
}

}  // namespace slope
