// slope_gpu from another project: SLoPe's training recipe on one layer, end to end.
//  1. A SlopeLinear (W pruned 2:4 at initialisation, double-pruned backward) learns a dense
//     teacher Y* = X W*^T from fresh random batches: AdamW updates W's kept values in place
//     in the compressed buffer, refresh_after_step keeps the transposed weight in sync.
//  2. For the last quarter of the steps the lazy low-rank adapter is switched on (SLoPe
//     turns it on for the last 1% of pretraining; a toy this short needs more to show it).
//  3. The layer is exported to a SparseInferenceLinear in slope's folded form, which must
//     compute what the training layer computes.
// A fixed 2:4 mask cannot hold the teacher's dropped half: the error the mask alone allows
// is printed beside the training's, and the adapter recovers part of the rest.
// Usage: train_and_export [D_OUT D_IN TOKENS STEPS]   (default 512 512 1024 400; sizes
// multiples of 16)
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "example_arguments.hpp"
#include "slope/core/error.hpp"
#include "slope/core/matrix.hpp"
#include "slope/core/tuning_cache.hpp"
#include "slope/gpu/adamw.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/dense_gemm.hpp"
#include "slope/gpu/device_buffer.hpp"
#include "slope/gpu/device_info.hpp"
#include "slope/gpu/inference_linear.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/slope_linear.hpp"
#include "slope/gpu/stream.hpp"

namespace gpu = slope::gpu;

namespace {

constexpr slope::DType kF16 = slope::DType::kF16;

// ||a - b||^2 / ||b||^2 over two downloaded d_out x tokens matrices, and the gradient of the
// mean over tokens of ||y - y*||^2 / 2 with respect to y: (y - y*) / tokens.
double squared_error_and_gradient(const slope::MatrixF& y, const slope::MatrixF& target, slope::MatrixF& grad) {
  double error = 0.0, norm = 0.0;
  grad = slope::MatrixF(y.rows, y.cols);
  for (size_t i = 0; i < y.data.size(); ++i) {
    const double diff = static_cast<double>(y.data[i]) - target.data[i];
    error += diff * diff;
    norm += static_cast<double>(target.data[i]) * target.data[i];
    grad.data[i] = static_cast<float>(diff / static_cast<double>(y.cols));
  }
  return error / norm;
}

// The share of the teacher's squared norm on the positions a 2:4 student has pruned: with
// isotropic inputs, the relative squared error of the best student on that mask.
double mask_floor(const slope::MatrixF& teacher, const slope::MatrixF& student) {
  double dropped = 0.0, total = 0.0;
  for (size_t i = 0; i < teacher.data.size(); ++i) {
    const double w = teacher.data[i];
    total += w * w;
    if (student.data[i] == 0.0f) dropped += w * w;
  }
  return dropped / total;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    slope::require(argc == 1 || argc == 5, "usage: train_and_export [D_OUT D_IN TOKENS STEPS]");
    const int64_t d_out = argc == 5 ? size_argument(argv[1], "D_OUT") : 512;
    const int64_t d_in = argc == 5 ? size_argument(argv[2], "D_IN") : 512;
    const int64_t t = argc == 5 ? size_argument(argv[3], "TOKENS") : 1024;
    const int64_t steps = argc == 5 ? size_argument(argv[4], "STEPS") : 400;
    slope::require(steps >= 4, "STEPS must be at least 4");
    gpu::require_cuda_device();

    gpu::Stream owned_stream;
    cudaStream_t stream = owned_stream.get();
    slope::TuningCache cache(slope::default_tuning_cache_path());
    for (const std::string& warning : cache.warnings()) std::fprintf(stderr, "warning: %s\n", warning.c_str());
    gpu::SparseEngine engine(&cache);
    gpu::DenseGemmCache dense(false);
    gpu::TrainingWorkspace workspace(engine, dense);
    gpu::SlopeLinear layer(workspace, {d_out, d_in, t, kF16, gpu::InputLayout::kTokenMajor, /*bias=*/true}, stream);

    // Teacher and student start from independent weights of the same scale.
    const float scale = 1.0f / std::sqrt(static_cast<float>(d_in));
    gpu::DeviceBuffer teacher_w(d_out * d_in * 2), student_w(d_out * d_in * 2), bias(d_out * 2);
    gpu::fill_uniform(teacher_w.get(), d_out * d_in, 1, scale, kF16, stream);
    gpu::fill_uniform(student_w.get(), d_out * d_in, 2, scale, kF16, stream);
    gpu::fill_uniform(bias.get(), d_out, 3, 0.1f, kF16, stream);
    layer.init_weights(student_w.get(), bias.get(), stream);  // prunes W 2:4 by magnitude
    layer.dense_weight(student_w.get(), stream);
    const double floor = mask_floor(gpu::download(teacher_w.get(), d_out, d_in, kF16, stream),
                                    gpu::download(student_w.get(), d_out, d_in, kF16, stream));

    // Y*^T = W* X^T, feature-major like the training layer's output.
    const gpu::DenseGemm& teacher = dense.get(gpu::dense_twin_shape(t, d_out, d_in, kF16, true, false), stream);
    gpu::DeviceBuffer x(t * d_in * 2), y(d_out * t * 2), y_star(d_out * t * 2), dy(d_out * t * 2);
    gpu::DeviceBuffer held_out_x(t * d_in * 2), held_out_y_star(d_out * t * 2);
    gpu::fill_uniform(held_out_x.get(), t * d_in, 4, 1.0f, kF16, stream);
    gpu::run_dense_twin(teacher, false, held_out_x.get(), teacher_w.get(), held_out_y_star.get(), stream);
    auto held_out_error = [&] {
      layer.forward(held_out_x.get(), y.get(), stream);
      const double e = gpu::relative_error_device(y.get(), held_out_y_star.get(), d_out * t, kF16, stream);
      return e * e;
    };

    slope::AdamWConfig config;
    config.lr = 1e-3f;
    config.weight_decay = 0.0f;
    config.max_grad_norm = 0.0f;  // no clipping: the loss is a plain regression
    gpu::AdamW optimizer(kF16, config);
    layer.add_to(optimizer, "layer");
    gpu::SlopeLinear* layers[] = {&layer};
    const int64_t adapter_step = steps - steps / 4;
    const int64_t rank = gpu::padded_rank(std::max<int64_t>(1, d_in / 64));  // 1.56% of d_in, as in the paper
    const double start = held_out_error();
    std::printf("layer %lld x %lld, %lld tokens per batch, fp16; held-out relative squared error %.3f at the start; "
                "%.3f is the least this 2:4 mask allows\n",
                static_cast<long long>(d_out), static_cast<long long>(d_in), static_cast<long long>(t), start, floor);
    double sparse_only = start;
    for (int64_t step = 1; step <= steps; ++step) {
      if (step == adapter_step) {
        sparse_only = held_out_error();
        layer.enable_adapter(rank, 5, scale, stream);  // L random, R zero: the function is unchanged
        layer.adapter()->add_to(optimizer, "adapter");
        std::printf("step %4lld  adapter on (rank %lld); held-out error %.3f\n", static_cast<long long>(step),
                    static_cast<long long>(layer.adapter()->rank()), sparse_only);
      }
      gpu::fill_uniform(x.get(), t * d_in, 1000 + static_cast<uint64_t>(step), 1.0f, kF16, stream);
      gpu::run_dense_twin(teacher, false, x.get(), teacher_w.get(), y_star.get(), stream);
      layer.forward(x.get(), y.get(), stream);
      // The loss on the host keeps this example to the library's API; a model computes it on
      // the GPU.
      slope::MatrixF grad;
      const double error = squared_error_and_gradient(gpu::download(y.get(), d_out, t, kF16, stream),
                                                      gpu::download(y_star.get(), d_out, t, kF16, stream), grad);
      gpu::upload_into(grad, kF16, dy.get(), stream);
      layer.backward(x.get(), dy.get(), nullptr, false, stream);
      slope::require(!optimizer.step(stream).skipped, "a gradient was not finite");
      gpu::refresh_after_step(layers, step, /*mask_change_freq=*/100, stream);
      if (step % (steps / 4) == 0 || step == 1)
        std::printf("step %4lld  training batch error %.3f\n", static_cast<long long>(step), error);
    }
    const double end = held_out_error();
    std::printf("held-out relative squared error: %.3f at the start, %.3f with W alone, %.3f with the adapter "
                "(mask floor %.3f)\n",
                start, sparse_only, end, floor);

    // Export to the inference layer, folded form: its token-major input is input_width()
    // features wide, the adapter's features written past X's d_in by the layer itself.
    gpu::InferenceLinearSpec spec{d_out, d_in, layer.adapter()->rank(), t, kF16, gpu::InputLayout::kTokenMajor,
                                  /*bias=*/true, /*relu=*/false, gpu::AdapterForm::kFolded};
    gpu::SparseInferenceLinear inference(engine, dense, spec, stream);
    layer.export_to(inference, stream);
    gpu::DeviceBuffer wide_x(t * inference.input_ld() * 2), y_inference(inference.output_rows() * t * 2);
    SLOPE_CHECK(cudaMemcpy2DAsync(wide_x.get(), inference.input_ld() * 2, held_out_x.get(), d_in * 2, d_in * 2, t,
                                  cudaMemcpyDeviceToDevice, stream));
    inference.forward(wide_x.get(), y_inference.get(), stream);
    layer.forward(held_out_x.get(), y.get(), stream);
    const double export_error = gpu::relative_error_device(y_inference.get(), y.get(), d_out * t, kF16, stream);
    std::printf("exported to SparseInferenceLinear (folded form): relative error %.1e against the training layer\n",
                export_error);

    if (export_error > 5e-3) {
      std::fprintf(stderr, "error: the exported layer differs from the training layer by %.1e\n", export_error);
      return 1;
    }
    if (!(end < 0.5 * start)) {
      std::fprintf(stderr, "error: training did not learn (held-out error %.3f -> %.3f)\n", start, end);
      return 1;
    }
    return 0;
  } catch (const slope::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return e.kind() == slope::ErrorKind::kInvalidInput ? 2 : 1;
  }
}
