// AdamW on the GPU for every parameter of a model at once: the kept values of the sparse
// linears (written in place into W's compressed buffer, see SlopeLinear) and the dense
// parameters (embeddings, norms, biases, adapters) alike. A parameter is 16-bit with a 16-bit
// gradient; its fp32 moments live here. A step is two multi-tensor kernels however many
// tensors there are: one for the global gradient norm, one for the update.
#pragma once

#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "slope/core/adamw.hpp"
#include "slope/core/dtype.hpp"
#include "slope/gpu/device_buffer.hpp"

namespace slope::gpu {

// What a step did. A step whose gradients hold a NaN or an infinity is skipped: parameters,
// moments and the step count are left as they were.
struct AdamWStepReport {
  bool skipped = false;
  double grad_norm = 0.0;    // of the scaled gradients, before clipping
  float grad_coef = 1.0f;    // grad_scale times the clipping factor
  int64_t step = 0;          // steps taken so far
};

class AdamW {
 public:
  AdamW(DType dtype, const AdamWConfig& config);
  AdamW(const AdamW&) = delete;
  AdamW& operator=(const AdamW&) = delete;

  // Registers a parameter of `count` elements of this optimizer's dtype and its gradient;
  // its moments start at zero. `decay`: weight decay applies (matrices; not norms or biases).
  // Pointers must stay valid while the optimizer lives. Returns the tensor's index.
  int add(void* param, const void* grad, int64_t count, bool decay, std::string name);

  // One optimizer step on `stream`. Every gradient is first multiplied by grad_scale (e.g.
  // 1 / accumulation for a mean over micro-batches), then clipped to max_grad_norm by the
  // global norm. Synchronises the stream once, to read the norm.
  AdamWStepReport step(cudaStream_t stream, float grad_scale = 1.0f);
  // The update alone with a given gradient factor, no norm and no synchronisation (timing).
  void update(cudaStream_t stream, float grad_coef);

  int64_t steps() const { return steps_; }
  const float* first_moment(int tensor) const;
  const float* second_moment(int tensor) const;
  // Bytes one update moves: parameter read + write, gradient read, both moments read + write.
  double update_bytes() const;

 private:
  struct Slot {
    void* param;
    const void* grad;
    int64_t count;
    bool decay;
    std::string name;
    DeviceBuffer m, v;
  };
  void build_tables();

  DType dtype_;
  AdamWConfig config_;
  std::vector<Slot> slots_;
  int64_t elements_ = 0;
  int64_t steps_ = 0;
  bool tables_ready_ = false;
  DeviceBuffer tensor_table_, chunk_table_, norm_;
  int chunks_ = 0;
};

}  // namespace slope::gpu
