#include "slope/gpu/adamw.hpp"

#include <cmath>
#include <cstdint>

#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/optimizer_kernels.hpp"

namespace slope::gpu {

AdamW::AdamW(DType dtype, const AdamWConfig& config) : dtype_(dtype), config_(config) {
  require(dtype == DType::kF16 || dtype == DType::kBF16, "AdamW: parameters must be fp16 or bf16");
  validate(config_);
}

int AdamW::add(void* param, const void* grad, int64_t count, bool decay, std::string name) {
  require(param != nullptr && grad != nullptr, "AdamW: parameter '" + name + "' has a null buffer");
  require(count > 0, "AdamW: parameter '" + name + "' is empty");
  // The kernel reads four 16-bit elements at a time.
  require(reinterpret_cast<uintptr_t>(param) % 8 == 0 && reinterpret_cast<uintptr_t>(grad) % 8 == 0,
          "AdamW: parameter '" + name + "' and its gradient must be 8-byte aligned");
  Slot s{param, grad, count, decay, std::move(name), DeviceBuffer(count * 4), DeviceBuffer(count * 4)};
  SLOPE_CHECK(cudaMemset(s.m.get(), 0, count * 4));
  SLOPE_CHECK(cudaMemset(s.v.get(), 0, count * 4));
  slots_.push_back(std::move(s));
  elements_ += count;
  tables_ready_ = false;
  return static_cast<int>(slots_.size()) - 1;
}

void AdamW::build_tables() {
  std::vector<OptimizerTensor> tensors;
  std::vector<OptimizerChunk> chunks;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    tensors.push_back({s.param, s.grad, s.m.as<float>(), s.v.as<float>(), s.count, s.decay ? 1 : 0});
    for (int64_t b = 0; b < s.count; b += kOptimizerChunk) chunks.push_back({static_cast<int32_t>(i), b});
  }
  require(chunks.size() < (1u << 31), "AdamW: too many chunks for one launch");
  tensor_table_ = DeviceBuffer(tensors.size() * sizeof(OptimizerTensor));
  chunk_table_ = DeviceBuffer(chunks.size() * sizeof(OptimizerChunk));
  SLOPE_CHECK(cudaMemcpy(tensor_table_.get(), tensors.data(), tensor_table_.bytes(), cudaMemcpyHostToDevice));
  SLOPE_CHECK(cudaMemcpy(chunk_table_.get(), chunks.data(), chunk_table_.bytes(), cudaMemcpyHostToDevice));
  if (!norm_.get()) norm_ = DeviceBuffer(sizeof(float));
  chunks_ = static_cast<int>(chunks.size());
  tables_ready_ = true;
}

AdamWStepReport AdamW::step(cudaStream_t stream, float grad_scale) {
  require(!slots_.empty(), "AdamW: no parameters registered");
  require(std::isfinite(grad_scale) && grad_scale > 0.0f, "AdamW: grad_scale must be finite and > 0");
  if (!tables_ready_) build_tables();
  SLOPE_CHECK(cudaMemsetAsync(norm_.get(), 0, sizeof(float), stream));
  grad_square_sum(tensor_table_.as<OptimizerTensor>(), chunk_table_.as<OptimizerChunk>(), chunks_, grad_scale,
                  norm_.as<float>(), dtype_, stream);
  float sum = 0.0f;
  SLOPE_CHECK(cudaMemcpyAsync(&sum, norm_.get(), sizeof(float), cudaMemcpyDeviceToHost, stream));
  SLOPE_CHECK(cudaStreamSynchronize(stream));
  AdamWStepReport report;
  report.grad_norm = std::sqrt(static_cast<double>(sum));
  if (!std::isfinite(report.grad_norm)) {  // a NaN or Inf somewhere: leave everything as it is
    report.skipped = true;
    report.step = steps_;
    return report;
  }
  report.grad_coef = grad_scale * clip_coefficient(report.grad_norm, config_.max_grad_norm);
  update(stream, report.grad_coef);
  report.step = steps_;
  return report;
}

void AdamW::update(cudaStream_t stream, float grad_coef) {
  if (!tables_ready_) build_tables();
  ++steps_;
  adamw_multi_tensor(tensor_table_.as<OptimizerTensor>(), chunk_table_.as<OptimizerChunk>(), chunks_, config_,
                     adamw_step_terms(config_, steps_), grad_coef, dtype_, stream);
}

const float* AdamW::first_moment(int tensor) const { return slots_.at(static_cast<size_t>(tensor)).m.as<float>(); }
const float* AdamW::second_moment(int tensor) const { return slots_.at(static_cast<size_t>(tensor)).v.as<float>(); }

double AdamW::update_bytes() const { return static_cast<double>(elements_) * (2 + 2 + 2 + 8 + 8); }

}  // namespace slope::gpu
