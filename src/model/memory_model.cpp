#include "slope/model/memory_model.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include <fmt/format.h>

#include "slope/core/compressed.hpp"
#include "slope/core/error.hpp"

namespace slope {
namespace {

constexpr int64_t kHalf = 2;      // fp16 weight or gradient element
constexpr int64_t kMoments = 8;   // fp32 exp_avg + fp32 exp_avg_sq
constexpr int64_t kMaskByte = 1;  // the paper's one-byte mask per dense element

int64_t compressed(int64_t rows, int64_t cols) { return compressed_2to4_bytes(rows, cols, kHalf); }

// Full training state of a dense parameter: fp16 weight, fp16 gradient, fp32 moments.
void dense_training(MemoryBreakdown& b, int64_t elements) {
  b.parts["weights"] += kHalf * elements;
  b.parts["gradients"] += kHalf * elements;
  b.parts["optimizer"] += kMoments * elements;
}

// Lazy low-rank adapters: Y += (X L) R with L: d_in x r, R: r x d_out.
void add_adapters(MemoryBreakdown& b, const TensorSpec& t, int64_t rank, Mode mode) {
  if (rank == 0) return;
  const int64_t d_in = t.cols, d_out = t.rows;
  if (mode == Mode::kTraining) {
    // Trained densely with their own gradients and moments.
    const int64_t elements = rank * (d_in + d_out) * t.count;
    b.parts["adapters"] += (kHalf + kHalf + kMoments) * elements;
  } else {
    // Merged form: L^T joins W as r extra rows pruned 2:4; R stays dense.
    b.parts["adapters"] += t.count * (compressed(d_out + rank, d_in) - compressed(d_out, d_in) +
                                      kHalf * rank * d_out);
  }
}

void slope_paper(MemoryBreakdown& b, const TensorSpec& t, bool pruned, Mode mode) {
  const int64_t e = t.elements();
  if (mode == Mode::kInference) {
    b.parts["weights"] += pruned ? t.count * compressed(t.rows, t.cols) : kHalf * e;
    return;
  }
  if (pruned) {
    b.parts["weights"] += 2 * t.count * compressed(t.rows, t.cols);  // W and W^T compressed
    b.parts["masks"] += kMaskByte * e;
  } else {
    b.parts["weights"] += kHalf * e;
  }
  if (t.role == TensorRole::kVector) {
    b.parts["gradients"] += kHalf * e;
    b.parts["optimizer"] += kMoments * e;
  } else {  // the paper's script halves the states of every 2-D parameter
    b.parts["gradients"] += kHalf * e / 2;
    b.parts["optimizer"] += kMoments * e / 2;
  }
}

void slope_exact(MemoryBreakdown& b, const TensorSpec& t, bool pruned, Mode mode) {
  const int64_t e = t.elements();
  if (!pruned) {
    if (mode == Mode::kTraining) dense_training(b, e);
    else b.parts["weights"] += kHalf * e;
    return;
  }
  b.parts["weights"] += t.count * compressed(t.rows, t.cols);
  if (mode == Mode::kInference) return;
  b.parts["weights"] += t.count * compressed(t.cols, t.rows);  // W^{R,C} stored transposed
  // W's 2:4 positions are not stored twice: W's compressed metadata holds them, and the
  // kernels read them there (checked on the GPU at start-up; where the check fails a layer
  // keeps e / 8 bytes of its own).
  // W^{R,C}'s column mask, fixed between mask changes: one flag bit per kept value of W.
  // It lets the optimizer refresh W^{R,C} from W's values without a compression.
  b.parts["masks"] += e / 16;
  b.parts["gradients"] += kHalf * e / 2;                        // kept elements only
  b.parts["optimizer"] += kMoments * e / 2;
  // One dense fp16 gradient of the largest pruned linear, reused by every layer.
  b.parts["scratch"] = std::max(b.parts["scratch"], kHalf * t.rows * t.cols);
}

void fst(MemoryBreakdown& b, const TensorSpec& t, Mode mode, Protocol protocol) {
  const int64_t e = t.elements();
  if (mode == Mode::kInference) {  // FST deploys a dense model
    b.parts["weights"] += kHalf * e;
    return;
  }
  dense_training(b, e);
  if (!is_pruned_linear(t.role)) return;
  const bool sparse = t.role == TensorRole::kMlpLinear;  // FST prunes the MLP only
  if (protocol == Protocol::kPaper) b.parts["masks"] += kMaskByte * e;
  if (sparse) b.parts["weights"] += 2 * t.count * compressed(t.rows, t.cols);  // W and W^T
}

}  // namespace

const char* to_string(Method method) {
  switch (method) {
    case Method::kDense: return "dense";
    case Method::kSlope: return "slope";
    case Method::kFst: return "fst";
  }
  return "?";
}

const char* to_string(Mode mode) { return mode == Mode::kTraining ? "training" : "inference"; }

const char* to_string(Protocol protocol) { return protocol == Protocol::kPaper ? "paper" : "exact"; }

Protocol parse_protocol(const std::string& name) {
  if (name == "paper") return Protocol::kPaper;
  if (name == "exact") return Protocol::kExact;
  throw Error(ErrorKind::kInvalidInput, "unknown protocol '" + name + "' (expected paper or exact)");
}

void validate_adapter_ratio(double ratio) {
  require(std::isfinite(ratio) && ratio >= 0.0 && ratio < 1.0,
          fmt::format("adapter ratio must be >= 0 and < 1 (got {})", ratio));
}

int64_t adapter_rank(double ratio, int64_t hidden) {
  validate_adapter_ratio(ratio);
  // The small epsilon keeps 1/64 * 4096 at 64 despite binary rounding of the ratio.
  const auto raw = static_cast<int64_t>(std::floor(ratio * static_cast<double>(hidden) + 1e-9));
  return raw / 16 * 16;
}

int64_t paper_layer_count(const std::string& zoo_name, Mode mode) {
  const bool training = mode == Mode::kTraining;
  if (zoo_name == "OPT-2.7B" || zoo_name == "OPT-6.7B") return 12;
  if (zoo_name == "OPT-13B") return training ? 6 : 12;
  if (zoo_name == "OPT-30B") return training ? 3 : 6;
  if (zoo_name == "OPT-66B") return training ? 2 : 3;
  if (zoo_name == "LLaMA-3-8B") return 4;
  if (zoo_name == "Mistral-7B-v0.3") return 2;
  return 0;
}

int64_t MemoryBreakdown::total() const {
  int64_t sum = 0;
  for (const auto& [name, bytes] : parts) sum += bytes;
  return sum;
}

MemoryBreakdown memory_bytes(const ModelConfig& model, const MemoryQuery& q) {
  validate_adapter_ratio(q.adapter_ratio);
  MemoryBreakdown b;
  b.layers = q.layers;
  if (b.layers <= 0 && q.protocol == Protocol::kPaper) b.layers = paper_layer_count(model.name, q.mode);
  if (b.layers <= 0) b.layers = model.layers;
  // Only SLoPe carries adapters; FST and dense have none.
  b.rank = q.method == Method::kSlope ? adapter_rank(q.adapter_ratio, model.hidden) : 0;
  for (const char* part : {"weights", "masks", "gradients", "optimizer", "adapters", "scratch"})
    b.parts[part] = 0;

  for (const TensorSpec& t : parameter_tensors(model, b.layers)) {
    switch (q.method) {
      case Method::kDense:
        if (q.mode == Mode::kTraining) dense_training(b, t.elements());
        else b.parts["weights"] += kHalf * t.elements();
        break;
      case Method::kSlope: {
        const bool pruned = is_pruned_linear(t.role) || (q.prune_lm_head && t.role == TensorRole::kLmHead);
        if (q.protocol == Protocol::kPaper) slope_paper(b, t, pruned, q.mode);
        else slope_exact(b, t, pruned, q.mode);
        if (is_pruned_linear(t.role)) add_adapters(b, t, b.rank, q.mode);
        break;
      }
      case Method::kFst:
        fst(b, t, q.mode, q.protocol);
        break;
    }
  }
  return b;
}

}  // namespace slope
