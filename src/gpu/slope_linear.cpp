#include "slope/gpu/slope_linear.hpp"

#include "slope/core/error.hpp"
#include "slope/gpu/adamw.hpp"
#include "slope/gpu/compressed_layout.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/inference_linear.hpp"
#include "slope/gpu/kernels.hpp"

namespace slope::gpu {

void* TrainingWorkspace::grad_scratch(int64_t elements) {
  scratch_.reserve(static_cast<size_t>(elements) * 2);
  return scratch_.get();
}

SlopeLinear::SlopeLinear(TrainingWorkspace& workspace, const TrainingLinearSpec& spec, cudaStream_t stream)
    : ws_(workspace), spec_(spec) {
  require(spec.d_out % 16 == 0 && spec.d_in % 16 == 0 && spec.tokens % 16 == 0,
          "SLoPe layer dimensions must be multiples of 16");
  if (spec.bias) {
    bias_.reserve(spec.d_out * 2);
    bias_grad_.reserve(spec.d_out * 2);
  }
  const int64_t n = spec.d_out * spec.d_in;
  flags_.reserve(n / 16);
  grad_.reserve(n / 2 * 2);
  w_ = std::make_unique<SparseLinear>(workspace.engine(), spec.d_out, spec.d_in, spec.tokens, spec.dtype, Tiling::kNone,
                                      stream, spec.bias ? bias_.get() : nullptr, spec.input, spec.relu);
  // dY^T is feature-major; tiles (square, along T's rows) where the transpose is tall.
  t_ = std::make_unique<SparseLinear>(workspace.engine(), spec.d_in, spec.d_out, spec.tokens, spec.dtype,
                                      can_tile(spec.d_in, spec.d_out) ? Tiling::kAuto : Tiling::kNone, stream, nullptr,
                                      InputLayout::kFeatureMajor);
  dw_ = &workspace.dense().get(
      weight_grad_shape(spec.tokens, spec.d_out, spec.d_in, spec.dtype, spec.input == InputLayout::kTokenMajor), stream);
  workspace.grad_scratch(n);
  t_parts_ = transpose_parts();
  const SparseLtContext& ctx = workspace.engine().context();
  const CompressedLayoutFacts w_layout = compressed_layout_facts(ctx, spec.d_out, spec.d_in, spec.dtype, stream);
  in_place_ = w_layout.values_lead && compressed_values_lead(ctx, t_->part_rows(0), spec.d_out, spec.dtype, stream);
  if (!in_place_) values_.reserve(n);
  // Only the in-place path compresses W from probes alone, whose metadata is exactly slope's
  // positions; the fallback compresses the values, where a kept zero could move its slot.
  positions_in_metadata_ = in_place_ && w_layout.metadata_holds_positions;
  if (!positions_in_metadata_) indices_.reserve(n / 8);
}

Positions2to4 SlopeLinear::positions() const {
  if (!positions_in_metadata_) return indices_.as<uint8_t>();
  return Positions2to4::in_compressed(w_->part(0).data(), spec_.d_out, spec_.d_in);
}

void* SlopeLinear::kept_values() { return in_place_ ? w_->part(0).data() : values_.get(); }
const void* SlopeLinear::kept_values() const { return in_place_ ? w_->part(0).data() : values_.get(); }

// Built once: the parts and their buffers are fixed when t_ is built.
TransposeParts SlopeLinear::transpose_parts() const {
  TransposeParts parts;
  require(t_->tiles() <= TransposeParts::kMax, "too many tiles in W^{R,C}");
  parts.count = static_cast<int>(t_->tiles());
  parts.rows_per_part = t_->part_rows(0);
  // One height for all parts: W^{R,C} is whole or in square tiles, never in wave bands.
  for (int i = 1; i < parts.count; ++i) require(t_->part_rows(i) == parts.rows_per_part, "W^{R,C} in unequal parts");
  for (int i = 0; i < parts.count; ++i) parts.values[i] = t_->part(i).data();
  return parts;
}

void SlopeLinear::init_weights(const void* w, const void* bias, cudaStream_t stream) {
  const int64_t n = spec_.d_out * spec_.d_in;
  DeviceBuffer w_r(n * 2);
  void* scratch = ws_.grad_scratch(n);
  // The positions the pruning finds: into the layer's own copy, or (until W's metadata holds
  // them) a buffer that lives as long as w_r.
  DeviceBuffer transient_positions(positions_in_metadata_ ? n / 8 : 0);
  uint8_t* pruned_positions = positions_in_metadata_ ? transient_positions.as<uint8_t>() : indices_.as<uint8_t>();
  prune_rows_2to4(w, w_r.get(), pruned_positions, spec_.d_out, spec_.d_in, spec_.dtype, stream);
  if (in_place_) {
    // W's metadata from a probe with ones on slope's kept positions, then the real values.
    scatter_kept_2to4(nullptr, pruned_positions, scratch, spec_.d_out, spec_.d_in, spec_.dtype, stream);
    w_->set_weight(scratch, stream);
  }
  gather_kept_2to4(w_r.get(), pruned_positions, kept_values(), spec_.d_out, spec_.d_in, false, spec_.dtype, stream);
  if (!in_place_) w_->set_weight(w_r.get(), stream);
  if (spec_.bias) {
    require(bias != nullptr, "this layer needs a bias");
    SLOPE_CHECK(cudaMemcpyAsync(bias_.get(), bias, spec_.d_out * 2, cudaMemcpyDeviceToDevice, stream));
  }
  change_column_mask(stream);
  SLOPE_CHECK(cudaStreamSynchronize(stream));  // w_r dies here
}

void SlopeLinear::rebuild_transpose(cudaStream_t stream) {
  // In place: a probe (ones on T's slots) gives T its metadata and refresh writes the values.
  // The fallback compresses T with its values.
  void* scratch = ws_.grad_scratch(spec_.d_out * spec_.d_in);
  transpose_from_kept(in_place_ ? nullptr : kept_values(), positions(), flags_.as<uint8_t>(), scratch,
                      spec_.d_out, spec_.d_in, spec_.dtype, stream);
  t_->set_weight(scratch, stream);
  if (in_place_) refresh(stream);
}

void SlopeLinear::change_column_mask(cudaStream_t stream) {
  column_mask_flags(kept_values(), positions(), flags_.as<uint8_t>(), spec_.d_out, spec_.d_in, spec_.dtype,
                    stream);
  rebuild_transpose(stream);
}

void SlopeLinear::refresh(cudaStream_t stream) {
  if (!in_place_) {
    refresh_by_recompress(stream);
    return;
  }
  refresh_transpose_values(kept_values(), positions(), flags_.as<uint8_t>(), t_parts_,
                           spec_.d_out, spec_.d_in, spec_.dtype, stream);
}

void SlopeLinear::refresh_by_recompress(cudaStream_t stream) {
  // The dense matrices pass through the shared scratch one after the other (same stream).
  void* scratch = ws_.grad_scratch(spec_.d_out * spec_.d_in);
  // In the in-place path the layer's own buffers are already current, and compressing into
  // them could move the slot of a value that is exactly zero away from the probe's: the
  // baseline then compresses into buffers of its own, made once.
  CompressedWeight* w_target = in_place_ ? nullptr : &w_->part(0);
  if (in_place_) {
    if (!baseline_w_) {
      baseline_w_ = std::make_unique<CompressedWeight>(ws_.engine().context(), spec_.d_out, spec_.d_in, spec_.dtype);
      baseline_t_ = std::make_unique<CompressedWeight>(ws_.engine().context(), spec_.d_in, spec_.d_out, spec_.dtype);
    }
    w_target = baseline_w_.get();
  }
  const Positions2to4 w_positions = positions();
  scatter_kept_2to4(kept_values(), w_positions, scratch, spec_.d_out, spec_.d_in, spec_.dtype, stream);
  w_target->compress(scratch, stream);
  transpose_from_kept(kept_values(), w_positions, flags_.as<uint8_t>(), scratch, spec_.d_out, spec_.d_in,
                      spec_.dtype, stream);
  if (in_place_) baseline_t_->compress(scratch, stream);
  else t_->set_weight(scratch, stream);
}

void SlopeLinear::forward(const void* x, void* y, cudaStream_t stream) {
  if (adapter_) {
    // X L runs beside the sparse product; the ReLU moves behind the adapter's addition.
    adapter_->forward_begin(x, stream);
    w_->forward_without_relu(x, y, stream);
    adapter_->forward_end(y, stream);
  } else {
    w_->forward(x, y, stream);
  }
}

void SlopeLinear::grad_input(const void* dy, void* dx, cudaStream_t stream) const { t_->forward(dy, dx, stream); }

void SlopeLinear::grad_weight(const void* x, const void* dy, bool accumulate, cudaStream_t stream) {
  void* scratch = ws_.grad_scratch(spec_.d_out * spec_.d_in);
  dw_->run(x, dy, scratch, stream);
  gather_kept_2to4(scratch, positions(), grad_.get(), spec_.d_out, spec_.d_in, accumulate, spec_.dtype,
                   stream);
  if (spec_.bias) row_sums(dy, bias_grad_.get(), spec_.d_out, spec_.tokens, accumulate, spec_.dtype, stream);
}

void SlopeLinear::backward(const void* x, const void* dy, void* dx, bool accumulate, cudaStream_t stream) {
  // The adapter's thin products overlap the sparse input gradient and the weight gradient.
  if (adapter_) adapter_->backward_begin(x, dy, accumulate, stream);
  if (dx) grad_input(dy, dx, stream);
  grad_weight(x, dy, accumulate, stream);
  if (adapter_) adapter_->backward_end(dx, stream);
}

void SlopeLinear::add_to(AdamW& optimizer, const std::string& name) {
  optimizer.add(kept_values(), grad_.get(), spec_.d_out * spec_.d_in / 2, true, name + ".weight");
  if (spec_.bias) optimizer.add(bias_.get(), bias_grad_.get(), spec_.d_out, false, name + ".bias");
  if (adapter_) adapter_->add_to(optimizer, name);
}

void SlopeLinear::enable_adapter(int64_t rank, uint64_t seed, float scale, cudaStream_t stream) {
  require(!adapter_, "the adapter of this layer is already on");
  adapter_ = std::make_unique<TrainingAdapter>(
      ws_.dense(), ws_.side_dense(), TrainingAdapterSpec{spec_.d_out, spec_.d_in, rank, spec_.tokens, spec_.dtype, spec_.input, spec_.relu},
      stream);
  w_->prepare_without_relu(stream);
  adapter_->init_random(seed, scale, stream);
}

void SlopeLinear::dense_weight(void* out, cudaStream_t stream) const {
  scatter_kept_2to4(kept_values(), positions(), out, spec_.d_out, spec_.d_in, spec_.dtype, stream);
}

void SlopeLinear::export_to(SparseInferenceLinear& out, cudaStream_t stream) {
  const InferenceLinearSpec& o = out.spec();
  require(o.d_out == spec_.d_out && o.d_in == spec_.d_in && o.bias == spec_.bias && o.relu == spec_.relu &&
              o.dtype == spec_.dtype,
          "export: the inference layer's shape, bias, ReLU or dtype differ from the training layer's");
  require(o.rank == (adapter_ ? adapter_->rank() : 0),
          "export: the inference layer's rank must equal the adapter's padded rank");
  DeviceBuffer w(spec_.d_out * spec_.d_in * 2), l;
  dense_weight(w.get(), stream);
  if (adapter_) {  // the inference layer takes L (d_in x rank); the adapter holds L^T
    l = DeviceBuffer(spec_.d_in * adapter_->rank() * 2);
    transpose_16bit(adapter_->l_t(), l.get(), adapter_->rank(), spec_.d_in, stream);
  }
  out.set_weights(w.get(), adapter_ ? l.get() : nullptr, adapter_ ? adapter_->r() : nullptr,
                  spec_.bias ? bias_.get() : nullptr, stream);
  SLOPE_CHECK(cudaStreamSynchronize(stream));
}

size_t SlopeLinear::state_bytes() const {
  return w_->compressed_bytes() + t_->compressed_bytes() + indices_.bytes() + flags_.bytes() + grad_.bytes() +
         values_.bytes() + bias_.bytes() + bias_grad_.bytes() + (adapter_ ? adapter_->state_bytes() : 0);
}

double SlopeLinear::refresh_bytes() const {
  const double n = static_cast<double>(spec_.d_out) * static_cast<double>(spec_.d_in);
  const double element = 2.0;
  return n / 2 * element   // W's kept values read
         + n / 8           // W's positions (in W's metadata, or the layer's own)
         + n / 16          // column-mask flags
         + n / 2 * element;  // T's values written
}

void refresh_after_step(std::span<SlopeLinear* const> layers, int64_t step, int64_t mask_change_freq,
                        cudaStream_t stream) {
  const bool change = mask_change_freq > 0 && step % mask_change_freq == 0;
  for (SlopeLinear* layer : layers) {
    if (change) layer->change_column_mask(stream);
    else layer->refresh(stream);
  }
}

}  // namespace slope::gpu
