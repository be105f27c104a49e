#include "slope/gpu/sparse_engine.hpp"

#include <nvrtc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "slope/bench/timer.hpp"
#include "slope/core/error.hpp"
#include "slope/core/wall_clock.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/device_info.hpp"
#include "slope/gpu/kernels.hpp"

namespace slope::gpu {
namespace {

constexpr uint32_t kAlignment = 16;

cudaDataType_t cuda_type(DType d) { return d == DType::kBF16 ? CUDA_R_16BF : CUDA_R_16F; }

void require_multiple_of_16(int64_t value, const char* what) {
  require(value > 0 && value % 16 == 0,
          std::string("sparse 2:4 products need ") + what + " to be a positive multiple of 16 (got " +
              std::to_string(value) + ")");
}

}  // namespace

std::string SparseShape::key() const {
  return "m" + std::to_string(m) + ",k" + std::to_string(k) + ",n" + std::to_string(n) + "|" + to_string(dtype) +
         (bias ? "|bias" : "") + (relu ? "|relu" : "") + (input == InputLayout::kTokenMajor ? "|rowNT" : "|rowNN") +
         (in_ld > 0 && in_ld != k ? "|inld" + std::to_string(in_ld) : "") +
         (output == OutputLayout::kTokenMajor ? "|outT" + (out_ld > 0 && out_ld != m ? std::to_string(out_ld) : "")
                                               : "");
}

void validate_sparse_shape(const SparseShape& s) {
  require(s.dtype != DType::kF32, "sparse 2:4 products support fp16 and bf16");
  require_multiple_of_16(s.m, "the output features (rows of W)");
  require_multiple_of_16(s.k, "the input features (columns of W)");
  require_multiple_of_16(s.n, "the token count");
  require(s.out_ld == 0 || (s.output == OutputLayout::kTokenMajor && s.out_ld >= s.m && s.out_ld % 8 == 0),
          "a token-major output's row stride must be at least m and a multiple of 8 (got " +
              std::to_string(s.out_ld) + ")");
  require(s.in_ld == 0 || (s.input == InputLayout::kTokenMajor && s.in_ld >= s.k && s.in_ld % 8 == 0),
          "a token-major input's row stride must be at least k and a multiple of 8 (got " + std::to_string(s.in_ld) +
              ")");
}

SparseLtContext::SparseLtContext() {
  require_cuda_device();
  // Touch NVRTC so that the library cuSPARSELt dlopen()s is already loaded (see CMake).
  int nvrtc_major = 0, nvrtc_minor = 0;
  nvrtcVersion(&nvrtc_major, &nvrtc_minor);
  const LibraryRelease loaded = loaded_cusparselt_release();
  require_compatible_release("cuSPARSELt", built_cusparselt_release(), loaded);
  SLOPE_CHECK(cusparseLtInit(&handle_));
  version_ = loaded.str();
  int device = 0;
  SLOPE_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  SLOPE_CHECK(cudaGetDeviceProperties(&prop, device));
  gpu_ = std::string(prop.name) + " sm" + std::to_string(prop.major) + std::to_string(prop.minor) + " x" +
         std::to_string(prop.multiProcessorCount);
  sm_count_ = prop.multiProcessorCount;
}

SparseLtContext::~SparseLtContext() { cusparseLtDestroy(&handle_); }

CompressedWeight::CompressedWeight(const SparseLtContext& ctx, int64_t m, int64_t k, DType dtype)
    : ctx_(ctx), m_(m), k_(k), dtype_(dtype) {
  require_multiple_of_16(m, "the rows of W");
  require_multiple_of_16(k, "the columns of W");
  require(dtype != DType::kF32, "sparse 2:4 weights must be fp16 or bf16");
  // The same descriptor as a plan's A: W row-major m x k, used with op N.
  SLOPE_CHECK(cusparseLtStructuredDescriptorInit(ctx.get(), &desc_, m, k, k, kAlignment, cuda_type(dtype),
                                                 CUSPARSE_ORDER_ROW, CUSPARSELT_SPARSITY_50_PERCENT));
  SLOPE_CHECK(cusparseLtSpMMACompressedSize2(ctx.get(), &desc_, &compressed_bytes_, &scratch_bytes_));
  buffer_.reserve(allocation_bytes(compressed_bytes_));
}

CompressedWeight::CompressedWeight(const SparsePlan& plan)
    : ctx_(plan.context()), m_(plan.shape().m), k_(plan.shape().k), dtype_(plan.shape().dtype), plan_(&plan) {
  SLOPE_CHECK(cusparseLtSpMMACompressedSize(ctx_.get(), plan.handle(), &compressed_bytes_, &scratch_bytes_));
  buffer_.reserve(allocation_bytes(compressed_bytes_));
}

CompressedWeight::~CompressedWeight() {
  if (!plan_) cusparseLtMatDescriptorDestroy(&desc_);
}

void CompressedWeight::compress(const void* dense_pruned, cudaStream_t stream) {
  // One compression scratch per context, shared by all weights: a weight keeps its 9/16 only.
  void* scratch = ctx_.compress_scratch(scratch_bytes_);
  if (plan_)
    SLOPE_CHECK(cusparseLtSpMMACompress(ctx_.get(), plan_->handle(), dense_pruned, buffer_.get(), scratch, stream));
  else
    SLOPE_CHECK(cusparseLtSpMMACompress2(ctx_.get(), &desc_, 1, CUSPARSE_OPERATION_NON_TRANSPOSE, dense_pruned,
                                         buffer_.get(), scratch, stream));
}

void* SparseLtContext::compress_scratch(size_t bytes) const {
  compress_scratch_.reserve(bytes > 0 ? bytes : 256);
  return compress_scratch_.get();
}

namespace {

// The product D = W . op(B) (+ bias) (ReLU) over the given descriptors, with its epilogue.
void init_matmul_descriptor(const SparseLtContext& ctx, const SparseShape& shape, const cusparseLtMatDescriptor_t& a,
                            const cusparseLtMatDescriptor_t& b, const cusparseLtMatDescriptor_t& d, const void* bias,
                            cusparseLtMatmulDescriptor_t* matmul) {
  require(shape.bias == (bias != nullptr), "a sparse plan with a bias epilogue needs its bias vector (and only then)");
  const bool token_major = shape.input == InputLayout::kTokenMajor;
  SLOPE_CHECK(cusparseLtMatmulDescriptorInit(
      ctx.get(), matmul, CUSPARSE_OPERATION_NON_TRANSPOSE,
      token_major ? CUSPARSE_OPERATION_TRANSPOSE : CUSPARSE_OPERATION_NON_TRANSPOSE, &a, &b, &d, &d,
      CUSPARSE_COMPUTE_32F));
  if (shape.bias)
    SLOPE_CHECK(cusparseLtMatmulDescSetAttribute(ctx.get(), matmul, CUSPARSELT_MATMUL_BIAS_POINTER, &bias,
                                                 sizeof(bias)));
  if (shape.relu) {
    const int on = 1;
    SLOPE_CHECK(cusparseLtMatmulDescSetAttribute(ctx.get(), matmul, CUSPARSELT_MATMUL_ACTIVATION_RELU, &on,
                                                 sizeof(on)));
  }
}

}  // namespace

SparseSelection::SparseSelection(const SparseLtContext& ctx, const SparseShape& shape, const TuningEntry* config,
                                 const void* bias)
    : ctx_(ctx), shape_(shape) {
  validate_sparse_shape(shape);
  const cudaDataType_t type = cuda_type(shape.dtype);
  // See the header: A = W (m x k row-major, op N); B = X (t x k, op T) or X^T (k x t, op N);
  // D = Y^T (m x t row-major) or Y (t x m row-major, which is D column-major with ld >= m).
  const bool token_major = shape.input == InputLayout::kTokenMajor;
  SLOPE_CHECK(cusparseLtStructuredDescriptorInit(ctx.get(), &a_, shape.m, shape.k, shape.k, kAlignment, type,
                                                 CUSPARSE_ORDER_ROW, CUSPARSELT_SPARSITY_50_PERCENT));
  if (token_major)
    SLOPE_CHECK(cusparseLtDenseDescriptorInit(ctx.get(), &b_, shape.n, shape.k, shape.in_ld > 0 ? shape.in_ld : shape.k,
                                              kAlignment, type,
                                              CUSPARSE_ORDER_ROW));
  else
    SLOPE_CHECK(cusparseLtDenseDescriptorInit(ctx.get(), &b_, shape.k, shape.n, shape.n, kAlignment, type,
                                              CUSPARSE_ORDER_ROW));
  if (shape.output == OutputLayout::kTokenMajor)
    SLOPE_CHECK(cusparseLtDenseDescriptorInit(ctx.get(), &d_, shape.m, shape.n, shape.out_ld > 0 ? shape.out_ld : shape.m,
                                              kAlignment, type, CUSPARSE_ORDER_COL));
  else
    SLOPE_CHECK(cusparseLtDenseDescriptorInit(ctx.get(), &d_, shape.m, shape.n, shape.n, kAlignment, type,
                                              CUSPARSE_ORDER_ROW));
  init_matmul_descriptor(ctx, shape, a_, b_, d_, bias, &matmul_);
  SLOPE_CHECK(cusparseLtMatmulAlgSelectionInit(ctx.get(), &alg_, &matmul_, CUSPARSELT_MATMUL_ALG_DEFAULT));
  // The configuration goes into the selection before any plan is initialised: a plan takes it
  // at initialisation, and cuSPARSELt 0.8.0 refuses a plan initialised again at the address of
  // a destroyed one (docs/gpu-engine.md).
  const int config_id = config ? config->config_id : 0;
  SLOPE_CHECK(cusparseLtMatmulAlgSetAttribute(ctx.get(), &alg_, CUSPARSELT_MATMUL_ALG_CONFIG_ID, &config_id,
                                              sizeof(config_id)));
  if (config && config->split_k > 0) {  // -1: let cuSPARSELt's heuristic choose, as the search left it
    SLOPE_CHECK(cusparseLtMatmulAlgSetAttribute(ctx.get(), &alg_, CUSPARSELT_MATMUL_SPLIT_K, &config->split_k,
                                                sizeof(config->split_k)));
    if (config->split_k > 1) {
      const auto mode = static_cast<cusparseLtSplitKMode_t>(config->split_k_mode);
      SLOPE_CHECK(cusparseLtMatmulAlgSetAttribute(ctx.get(), &alg_, CUSPARSELT_MATMUL_SPLIT_K_MODE, &mode,
                                                  sizeof(mode)));
      SLOPE_CHECK(cusparseLtMatmulAlgSetAttribute(ctx.get(), &alg_, CUSPARSELT_MATMUL_SPLIT_K_BUFFERS,
                                                  &config->split_k_buffers, sizeof(config->split_k_buffers)));
    }
  }
}

SparseSelection::~SparseSelection() {
  cusparseLtMatmulAlgSelectionDestroy(&alg_);
  cusparseLtMatDescriptorDestroy(&d_);
  cusparseLtMatDescriptorDestroy(&b_);
  cusparseLtMatDescriptorDestroy(&a_);
}

SparsePlan::SparsePlan(const SparseLtContext& ctx, const SparseShape& shape, const TuningEntry* config,
                       const void* bias)
    : SparsePlan(std::make_unique<SparseSelection>(ctx, shape, config, bias)) {}

SparsePlan::SparsePlan(std::unique_ptr<SparseSelection> own)
    : own_selection_(std::move(own)), selection_(*own_selection_), ctx_(selection_.context()),
      shape_(selection_.shape()), slot_(selection_.new_slot()) {
  // The descriptor the selection was made from, which holds this plan's bias.
  init_plan(&own_selection_->matmul_);
}

SparsePlan::SparsePlan(const SparseSelection& selection, const void* bias)
    : selection_(selection), ctx_(selection.context()), shape_(selection.shape()), slot_(selection.new_slot()) {
  // A descriptor of the plan's own carries its bias pointer: plans of one selection that
  // shared the selection's descriptor would all add the bias set on it last (probe).
  init_matmul_descriptor(ctx_, shape_, selection.a_, selection.b_, selection.d_, bias, &slot_.matmul);
  init_plan(&slot_.matmul);
}

void SparsePlan::init_plan(const cusparseLtMatmulDescriptor_t* matmul) {
  SLOPE_CHECK(cusparseLtMatmulPlanInit(ctx_.get(), &slot_.plan, matmul, &selection_.alg_));
  refresh_workspace();
}

SparsePlan::~SparsePlan() { cusparseLtMatmulPlanDestroy(&slot_.plan); }

std::unique_ptr<SparseSelection> SparsePlan::release_selection(std::unique_ptr<SparsePlan> plan) {
  require(plan && plan->own_selection_, "only a plan with a selection of its own can hand it back");
  std::unique_ptr<SparseSelection> selection = std::move(plan->own_selection_);
  plan.reset();  // the plan's slot stays in the selection, never handed out again
  return selection;
}

TuningEntry SparseSelection::configuration() const {
  TuningEntry e;
  SLOPE_CHECK(cusparseLtMatmulAlgGetAttribute(ctx_.get(), &alg_, CUSPARSELT_MATMUL_ALG_CONFIG_ID, &e.config_id,
                                              sizeof(e.config_id)));
  SLOPE_CHECK(cusparseLtMatmulAlgGetAttribute(ctx_.get(), &alg_, CUSPARSELT_MATMUL_SPLIT_K, &e.split_k,
                                              sizeof(e.split_k)));
  cusparseLtSplitKMode_t mode{};
  SLOPE_CHECK(cusparseLtMatmulAlgGetAttribute(ctx_.get(), &alg_, CUSPARSELT_MATMUL_SPLIT_K_MODE, &mode, sizeof(mode)));
  e.split_k_mode = static_cast<int>(mode);
  SLOPE_CHECK(cusparseLtMatmulAlgGetAttribute(ctx_.get(), &alg_, CUSPARSELT_MATMUL_SPLIT_K_BUFFERS, &e.split_k_buffers,
                                              sizeof(e.split_k_buffers)));
  return e;
}

void SparsePlan::refresh_workspace() {
  // Split-K configurations need more workspace than the default: query after every change.
  SLOPE_CHECK(cusparseLtMatmulGetWorkspace(ctx_.get(), &slot_.plan, &workspace_bytes_));
  workspace_.reserve(workspace_bytes_ > 0 ? workspace_bytes_ : 256);
}

TuningEntry SparsePlan::search(const void* w_compressed, const void* x, void* y, cudaStream_t stream) {
  // The search writes its choice into the plan's selection, which other plans may be reading.
  require(own_selection_ != nullptr, "only a plan with a selection of its own may search (" + shape_.key() + ")");
  const float alpha = 1.0f, beta = 0.0f;
  cudaStream_t streams[1] = {stream};
  // The default plan's workspace, as PyTorch passes it (a null workspace crashes on H200).
  SLOPE_CHECK(cusparseLtMatmulSearch(ctx_.get(), &slot_.plan, &alpha, w_compressed, x, &beta, y, y,
                                     workspace_.get(), streams, 1));
  // The search updated the plan in place; a split-K choice can need more workspace.
  refresh_workspace();
  return selection_.configuration();
}

void SparsePlan::matmul(const void* w_compressed, const void* x, void* y, cudaStream_t stream, float beta) const {
  const float alpha = 1.0f;
  cudaStream_t streams[1] = {stream};
  SLOPE_CHECK(cusparseLtMatmul(ctx_.get(), &slot_.plan, &alpha, w_compressed, x, &beta, y, y, workspace_.get(),
                               streams, 1));
}

int SparsePlan::config_id() const { return selection_.configuration().config_id; }

int SparsePlan::config_count() const {
  int max_id = 0;
  SLOPE_CHECK(cusparseLtMatmulAlgGetAttribute(ctx_.get(), &selection_.alg_, CUSPARSELT_MATMUL_ALG_CONFIG_MAX_ID,
                                              &max_id, sizeof(max_id)));
  return max_id;
}

SearchOperands::SearchOperands(const SparsePlan& plan, cudaStream_t stream) {
  const SparseShape& s = plan.shape();
  const bool token_major_out = s.output == OutputLayout::kTokenMajor;
  // A token-major input's rows may be wider than k (the next layer's adapter features).
  const int64_t x_elems = s.n * (s.in_ld > 0 ? s.in_ld : s.k);
  DeviceBuffer w(s.m * s.k * 2), x(x_elems * 2);
  fill_uniform(w.get(), s.m * s.k, 1, 1.0f, s.dtype, stream);
  fill_uniform(x.get(), x_elems, 2, 1.0f, s.dtype, stream);
  prune_rows_2to4(w.get(), w.get(), nullptr, s.m, s.k, s.dtype, stream);
  // A token-major output's rows may be wider than m (a tile of a wider layer).
  const int64_t y_elems = s.n * (token_major_out && s.out_ld > 0 ? s.out_ld : s.m);
  // A token-major plan reads one W only (see the header): each trial compresses the dense W
  // through itself, once per set where it rotates W with X and Y (WeightPerSet), so
  // the sets are counted with a compressed W's bytes (9/16 of the dense ones) all the same.
  std::unique_ptr<CompressedWeight> cw;
  if (!token_major_out) {
    cw = std::make_unique<CompressedWeight>(plan.context(), s.m, s.k, s.dtype);
    cw->compress(w.get(), stream);
  }
  const double w_bytes = cw ? static_cast<double>(cw->bytes()) : 2.0 * s.m * s.k * 9.0 / 16.0;
  const int sets = bench::rotation_count(w_bytes + 2.0 * (x_elems + y_elems), 16);
  for (int i = 0; i < sets; ++i) {
    if (cw) {
      w_.emplace_back(CompressedWeight::allocation_bytes(cw->bytes()));
      SLOPE_CHECK(cudaMemcpyAsync(w_.back().get(), cw->data(), cw->bytes(), cudaMemcpyDeviceToDevice, stream));
    }
    x_.emplace_back(x_elems * 2);
    y_.emplace_back(y_elems * 2);
    SLOPE_CHECK(cudaMemcpyAsync(x_.back().get(), x.get(), x_elems * 2, cudaMemcpyDeviceToDevice, stream));
  }
  if (token_major_out) dense_w_ = std::move(w);
  SLOPE_CHECK(cudaStreamSynchronize(stream));  // the temporaries die here
}

namespace {

// Milliseconds per product, `product(set)` running it on operand set `set`: the sets taken in
// turn, so that each call reads operands the previous ones pushed out of the L2.
double time_over_sets(const SearchOperands& ops, cudaStream_t stream, int samples, int warmup,
                      const std::function<void(int set)>& product) {
  return bench::time_device([&](int call) { product(call % ops.count()); }, stream, samples, warmup, ops.count())
      .median_ms;
}

// Milliseconds per product of `plan`, by default with enough samples to rank kernel
// configurations. W is rotated with X and Y, or fixed when `w` is given.
double time_plan(const SparsePlan& plan, const SearchOperands& ops, cudaStream_t stream, const void* w = nullptr,
                 int samples = 7, int warmup = 3) {
  return time_over_sets(ops, stream, samples, warmup,
                        [&](int set) { plan.matmul(w ? w : ops.w(set), ops.x(set), ops.y(set), stream); });
}

// A fresh token-major plan timed with W rotated past the L2 with X and Y, as the experiments
// and a model's layers run it. Such a plan reads only the W compressed through it (see the
// header), so every operand set gets a plan of the fresh plan's selection (0.01-0.2 ms each)
// and a W compressed through that plan. With one W left in the L2, d = 768 attention had run
// 0.7 us faster than with W read from HBM, the time that separated its kernels in `spmm`
// (docs/gpu-engine.md).
class WeightPerSet {
 public:
  // `plan` must not have multiplied yet, and must outlive this.
  WeightPerSet(const SparsePlan& plan, const SearchOperands& ops, cudaStream_t stream) : plan_(plan) {
    for (int set = 0; set < ops.count(); ++set) {
      if (set > 0) more_.push_back(std::make_unique<SparsePlan>(plan.selection()));
      w_.push_back(std::make_unique<CompressedWeight>(plan_of(set)));
      w_.back()->compress(ops.dense_w(), stream);
    }
  }
  // Milliseconds per product, as time_plan's.
  double time(const SearchOperands& ops, cudaStream_t stream, int samples = 7, int warmup = 3) const {
    return time_over_sets(ops, stream, samples, warmup, [&](int set) {
      plan_of(set).matmul(w_[static_cast<size_t>(set)]->data(), ops.x(set), ops.y(set), stream);
    });
  }

 private:
  const SparsePlan& plan_of(int set) const { return set == 0 ? plan_ : *more_[static_cast<size_t>(set - 1)]; }
  const SparsePlan& plan_;                               // set 0's
  std::vector<std::unique_ptr<SparsePlan>> more_;        // plans of its selection: sets 1, 2, ...
  std::vector<std::unique_ptr<CompressedWeight>> w_;     // one per set; destroyed before the plans
};

// Times every kernel configuration but `best`'s on a fresh plan and returns the fastest,
// `best` included.
TuningEntry scan_configurations(const SparsePlan& plan, const SearchOperands& ops, cudaStream_t stream,
                                TuningEntry best) {
  const bool token_major = plan.shape().output == OutputLayout::kTokenMajor;
  const int count = plan.config_count();
  for (int id = 0; id < count; ++id) {
    if (id == best.config_id) continue;
    TuningEntry candidate;
    candidate.config_id = id;
    candidate.split_k = -1;
    std::unique_ptr<SparsePlan> trial;
    try {
      trial = std::make_unique<SparsePlan>(plan.context(), plan.shape(), &candidate);
    } catch (const Error&) {
      continue;  // a configuration this shape cannot take (KernelConfigurations)
    }
    const double ms =
        token_major ? WeightPerSet(*trial, ops, stream).time(ops, stream) : time_plan(*trial, ops, stream);
    if (ms < best.search_ms) {
      best = candidate;
      best.search_ms = ms;
    }
  }
  return best;
}

// A token-major output's fp16 plans take ~0.25 s each to initialise on the H200 where each has
// a selection of its own, as each configuration tried needs (row-major outputs: < 1 ms), so a
// scan of all 52 configurations costs ~15 s per shape. cuSPARSELt's
// own search tries them all inside one plan in under a second. It runs on `plan` with a W
// compressed through it; that plan then reads only this W, which is harmless because the
// engine drops it once it has chosen (SparseEngine::configuration). Where the search fails
// (INTERNAL_ERROR at d = 768 upsample), the scan decides.
TuningEntry search_token_major(SparsePlan& plan, const SearchOperands& ops, cudaStream_t stream) {
  try {
    CompressedWeight w(plan);
    w.compress(ops.dense_w(), stream);
    TuningEntry best = plan.search(w.data(), ops.x(0), ops.y(0), stream);
    best.search_ms = time_plan(plan, ops, stream, w.data());
    return best;
  } catch (const Error&) {
    TuningEntry none;
    none.config_id = -1;
    none.search_ms = std::numeric_limits<double>::infinity();
    const TuningEntry best = scan_configurations(plan, ops, stream, none);
    require(best.config_id >= 0, "no sparse kernel configuration ran for " + plan.shape().key());
    return best;
  }
}

}  // namespace

TuningEntry search_configurations(SparsePlan& plan, const SearchOperands& ops, cudaStream_t stream) {
  if (plan.shape().output == OutputLayout::kTokenMajor) return search_token_major(plan, ops, stream);
  // cuSPARSELt's own search first (it also weighs split-K), then every kernel configuration
  // timed on its own with CUDA events: the library's search times few iterations and, for
  // the small shapes of the paper (d <= 1024, ~10 us products), its pick is often not the
  // fastest. These plans are cheap to make (< 1 ms), so the full scan costs milliseconds to a
  // second per shape, once.
  TuningEntry best = plan.search(ops.w(0), ops.x(0), ops.y(0), stream);
  best.search_ms = time_plan(plan, ops, stream);
  return scan_configurations(plan, ops, stream, best);
}

SparseEngine::SparseEngine(TuningCache* cache, SearchPolicy policy) : cache_(cache), policy_(policy) {}

std::string SparseEngine::tuning_key(const SparseShape& shape) const {
  return ctx_.gpu() + "|cusparselt " + ctx_.version() + "|" + shape.key();
}

const SparsePlan& SparseEngine::plan(const SparseShape& shape, cudaStream_t stream, const void* bias) {
  // A shared token-major plan would multiply whichever W it saw first (see the header).
  require(shape.output == OutputLayout::kFeatureMajor,
          "a token-major output's plan serves one weight only: use plan_for_one_weight");
  if (!shape.bias) return shared_plan(shape, stream);
  // A biased plan takes the configuration of its shape without bias; no plan without bias is
  // made for it.
  SparseShape base = shape;
  base.bias = false;
  require(bias != nullptr, "a sparse plan with a bias epilogue needs its bias vector");
  const std::string key = tuning_key(shape) + "@" + std::to_string(reinterpret_cast<uintptr_t>(bias));
  auto& slot = plans_[key];
  if (!slot) slot = std::make_unique<SparsePlan>(biased_selection(shape, configuration(base, stream), bias, stream));
  return *slot;
}

std::unique_ptr<SparsePlan> SparseEngine::plan_for_one_weight(const SparseShape& shape, cudaStream_t stream,
                                                             const void* bias) {
  SparseShape base = shape;
  base.bias = false;
  // A shape without bias can take the selection its search ran on: the search's plan reads
  // the W it searched with and is dropped, but plans made from its selection each read their
  // own (test TokenMajorLayersOfOneShapeEachUseTheirOwnWeight).
  const TuningEntry* config = configuration(base, stream, !shape.bias);
  // The selection (0.15-0.3 s for a token-major output) is made once per shape and kept; each
  // weight's plan from it costs well under a millisecond.
  auto& selection = selections_[tuning_key(shape)];
  if (!selection)
    selection = shape.bias ? biased_selection(shape, config, bias, stream) : settled_selection(shape, nullptr, stream);
  return std::make_unique<SparsePlan>(*selection, bias);
}

std::unique_ptr<SparseSelection> SparseEngine::biased_selection(const SparseShape& shape,
                                                                const TuningEntry* base_config, const void* bias,
                                                                cudaStream_t stream) {
  try {
    return std::make_unique<SparseSelection>(ctx_, shape, base_config, bias);
  } catch (const Error&) {
    if (!base_config) throw;  // cuSPARSELt's default refused: no other configuration to try
  }
  // The biased shape's own configuration: settled or cached earlier, or searched now.
  return settled_selection(shape, bias, stream);
}

std::unique_ptr<SparseSelection> SparseEngine::settled_selection(const SparseShape& shape, const void* bias,
                                                                 cudaStream_t stream) {
  const TuningEntry* config = configuration(shape, stream, false, bias);
  try {
    return std::make_unique<SparseSelection>(ctx_, shape, config, bias);
  } catch (const Error&) {
    if (!config || !set_aside_cached_configuration(tuning_key(shape))) throw;
  }
  // The entry set aside, configuration() searches the shape; a refused search pick throws here.
  return std::make_unique<SparseSelection>(ctx_, shape, configuration(shape, stream, false, bias), bias);
}

bool SparseEngine::set_aside_cached_configuration(const std::string& key) {
  // Only a choice read from the cache, once: a search's own choice ran during the search.
  const bool read_from_cache =
      std::any_of(events_.begin(), events_.end(), [&](const PlanEvent& e) { return e.key == key && e.from_cache; });
  if (!read_from_cache || !refused_from_cache_.insert(key).second) return false;
  chosen_.erase(key);
  return true;
}

void SparseEngine::prepare_selections(const std::vector<SparseShape>& shapes) {
  // What to make: per distinct tuning key, a shape, the configuration to set (null: the
  // default, which a search then overwrites), and where the selection goes.
  struct Job {
    SparseShape shape;
    std::string key;
    std::optional<TuningEntry> config;
    bool for_search = false;
    std::unique_ptr<SparseSelection> made;
  };
  std::vector<Job> jobs;
  std::set<std::string> queued;
  int64_t biased_rows = 0;
  for (const SparseShape& shape : shapes) {
    if (shape.output != OutputLayout::kTokenMajor) continue;
    validate_sparse_shape(shape);
    SparseShape base = shape;
    base.bias = false;
    const std::string base_key = tuning_key(base);
    Job job{shape, tuning_key(shape), std::nullopt, false, nullptr};
    if (const auto settled = chosen_.find(base_key); settled != chosen_.end()) {
      job.config = settled->second;
    } else if (const auto cached = cached_configuration(base_key)) {
      job.config = *cached;
    } else if (policy_ == SearchPolicy::kSearch) {
      // To be searched, on the shape without bias: prepare the search's own selection. A
      // biased shape's selection needs the configuration the search will choose.
      job.shape = base;
      job.key = base_key;
      job.for_search = true;
    }
    if (selections_.count(job.key) || prepared_trials_.count(job.key) || !queued.insert(job.key).second) continue;
    if (job.shape.bias) biased_rows = std::max(biased_rows, job.shape.m);
    jobs.push_back(std::move(job));
  }
  if (jobs.empty()) return;
  const void* bias = nullptr;
  if (biased_rows > 0) bias = bias_placeholders_.emplace_back(static_cast<size_t>(biased_rows) * 2).get();

  const auto start = std::chrono::steady_clock::now();
  const int threads = on_host_threads(jobs.size(), [&](const SparseLtContext& ctx, size_t j) {
    Job& job = jobs[j];
    // A selection that fails here is left to the layer that needs it, which makes it again
    // and reports the failure itself.
    job.made = std::make_unique<SparseSelection>(ctx, job.shape, job.config ? &*job.config : nullptr,
                                                 job.shape.bias ? bias : nullptr);
  });
  for (Job& job : jobs) {
    if (!job.made) continue;
    (job.for_search ? prepared_trials_ : selections_)[job.key] = std::move(job.made);
    ++prepared_count_;
  }
  prepare_ms_ += ms_since(start);
  prepare_threads_ = std::max(prepare_threads_, threads);
}

int SparseEngine::on_host_threads(size_t jobs, const std::function<void(const SparseLtContext&, size_t)>& make) {
  const int threads =
      static_cast<int>(std::clamp<size_t>(std::min<size_t>(jobs, std::thread::hardware_concurrency()), 1, 16));
  int device = 0;
  SLOPE_CHECK(cudaGetDevice(&device));
  // Thread t uses handle t, made by the first call that needed it and kept for later calls
  // (a handle must not serve two threads at once). A thread without a handle leaves its
  // share to the others.
  std::vector<std::unique_ptr<SparseLtContext>> new_contexts(static_cast<size_t>(threads));
  std::atomic<size_t> next{0};
  auto work = [&](int t) {
    const auto slot = static_cast<size_t>(t);
    try {
      SLOPE_CHECK(cudaSetDevice(device));  // a new host thread starts on device 0
      if (slot >= thread_contexts_.size()) new_contexts[slot] = std::make_unique<SparseLtContext>();
    } catch (...) {
      return;
    }
    const SparseLtContext& ctx = slot < thread_contexts_.size() ? *thread_contexts_[slot] : *new_contexts[slot];
    for (size_t j = next++; j < jobs; j = next++) {
      try {
        make(ctx, j);
      } catch (...) {  // left undone
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) pool.emplace_back(work, t);
  for (auto& thread : pool) thread.join();
  // Kept before anything made with them is stored, so that they outlive it.
  for (auto& ctx : new_contexts)
    if (ctx) thread_contexts_.push_back(std::move(ctx));
  return threads;
}

namespace {

// A tuning key's kind: its fields but the problem size, a token-major output's row stride,
// bias and ReLU (the epilogue does not change the choice). Keys of one kind share the GPU,
// cuSPARSELt release, dtype and layouts; decision keys ("...|bands-decision") are a kind of
// their own.
std::string key_kind(const std::string& key) {
  std::string kind;
  size_t field = 0, start = 0;
  while (start <= key.size()) {
    const size_t end = std::min(key.find('|', start), key.size());
    std::string part = key.substr(start, end - start);
    if (part.rfind("outT", 0) == 0) part = "outT";
    if (field != 2 && part != "bias" && part != "relu") kind += part + "|";  // field 2: m,k,n
    ++field;
    start = end + 1;
  }
  return kind;
}

}  // namespace

std::vector<int> SparseEngine::rival_configurations(const SparseShape& shape, int pick, int config_count) const {
  constexpr int64_t kTile = 128;  // the side of cuSPARSELt's common output tile on this GPU
  const int64_t tiles = (shape.m + kTile - 1) / kTile * ((shape.n + kTile - 1) / kTile);
  if (tiles <= ctx_.sm_count()) {
    std::vector<int> every;
    for (int id = 0; id < config_count; ++id)
      if (id != pick) every.push_back(id);
    return every;
  }
  const std::string key = tuning_key(shape), kind = key_kind(key);
  std::map<int, int> votes;
  std::set<std::string> counted;
  auto vote = [&](const std::string& other, int config_id) {
    if (other == key || config_id == pick || key_kind(other) != kind || !counted.insert(other).second) return;
    ++votes[config_id];
  };
  for (const auto& [other, entry] : chosen_)
    if (entry) vote(other, entry->config_id);
  if (cache_ && policy_ == SearchPolicy::kSearch)
    for (const auto& [other, entry] : cache_->entries()) vote(other, entry.config_id);
  std::vector<std::pair<int, int>> ranked;  // (votes, config), most votes first, then lower ids
  ranked.reserve(votes.size());
  for (const auto& [config_id, count] : votes) ranked.emplace_back(-count, config_id);
  std::sort(ranked.begin(), ranked.end());
  std::vector<int> rivals;
  for (size_t i = 0; i < ranked.size() && i < 3; ++i) rivals.push_back(ranked[i].second);
  return rivals;
}

SparseEngine::Retimed SparseEngine::retime_against_rivals(const SparseShape& shape, const SearchOperands& operands,
                                                          const TuningEntry& pick, int config_count,
                                                          cudaStream_t stream) {
  Retimed result{pick, nullptr, 0};
  const std::vector<int> rivals = rival_configurations(shape, pick.config_id, config_count);
  if (rivals.empty()) return result;
  // Candidate 0 is the pick, on a plan of its own: the search's plan keeps reading the W it
  // searched with, which is gone.
  std::vector<TuningEntry> entries = {pick};
  for (int id : rivals) {
    TuningEntry rival;
    rival.config_id = id;
    rival.split_k = -1;  // cuSPARSELt's heuristic picks the split, as for a searched pick
    entries.push_back(rival);
  }
  std::vector<std::unique_ptr<SparseSelection>> made(entries.size());
  on_host_threads(entries.size(), [&](const SparseLtContext& ctx, size_t j) {
    made[j] = std::make_unique<SparseSelection>(ctx, shape, &entries[j], nullptr);
  });
  struct Candidate {
    size_t entry;
    std::unique_ptr<SparsePlan> plan;   // the selection's own plan
    std::unique_ptr<WeightPerSet> sets;  // W rotated with X and Y; destroyed before the plan
    std::vector<double> ms;
  };
  std::vector<Candidate> candidates;
  for (size_t j = 0; j < entries.size(); ++j) {
    if (!made[j]) continue;  // a configuration this shape cannot take
    try {
      Candidate c{j, std::make_unique<SparsePlan>(std::move(made[j])), nullptr, {}};
      c.sets = std::make_unique<WeightPerSet>(*c.plan, operands, stream);
      candidates.push_back(std::move(c));
    } catch (const Error&) {  // nor this one
    }
  }
  if (candidates.empty() || candidates[0].entry != 0) return result;  // no pick to compare with
  // Rounds over all candidates back to back keep the GPU busy, at the clocks its power cap
  // allows under sustained load, and give every candidate the same conditions.
  constexpr int kRounds = 5;
  for (int round = 0; round < kRounds; ++round)
    for (Candidate& c : candidates) c.ms.push_back(c.sets->time(operands, stream, 3, 1));
  for (Candidate& c : candidates) std::sort(c.ms.begin(), c.ms.end());
  auto median = [](const Candidate& c) { return c.ms[c.ms.size() / 2]; };
  size_t best = 0;
  for (size_t i = 1; i < candidates.size(); ++i)
    if (median(candidates[i]) < median(candidates[best])) best = i;
  result.candidates = static_cast<int>(candidates.size());
  result.entry.search_ms = median(candidates[0]);
  // A rival replaces the pick only when clearly faster: within 1% is the timing's noise.
  if (best != 0 && median(candidates[best]) < 0.99 * median(candidates[0])) {
    result.entry = entries[candidates[best].entry];
    result.entry.search_ms = median(candidates[best]);
    candidates[best].sets.reset();  // only the selection's own plan may remain
    result.selection = SparsePlan::release_selection(std::move(candidates[best].plan));
  }
  return result;
}

std::optional<bool> SparseEngine::decision(const std::string& key) const {
  if (const auto known = decisions_.find(key); known != decisions_.end()) return known->second;
  if (cache_) {
    if (const auto hit = cache_->find(key)) return hit->config_id == 1;
  }
  return std::nullopt;
}

void SparseEngine::remember_decision(const std::string& key, bool yes, double ms) {
  decisions_[key] = yes;
  if (!cache_) return;
  // Stored beside the plans' configurations: config_id 1 means yes.
  TuningEntry e;
  e.config_id = yes ? 1 : 0;
  e.search_ms = ms;
  cache_->put(key, e);
  cache_->save();
}

const SparsePlan& SparseEngine::shared_plan(const SparseShape& shape, cudaStream_t stream) {
  auto& slot = plans_[tuning_key(shape)];
  if (!slot) slot = std::make_unique<SparsePlan>(settled_selection(shape, nullptr, stream));
  return *slot;
}

std::optional<TuningEntry> SparseEngine::cached_configuration(const std::string& key) const {
  if (policy_ != SearchPolicy::kSearch || !cache_ || refused_from_cache_.count(key)) return std::nullopt;
  return cache_->find(key);
}

void SparseEngine::keep_searched_selection(const std::string& key, std::unique_ptr<SparsePlan> trial,
                                           PlanEvent& event) {
  // Only a token-major output's selections are worth keeping (0.15-0.3 s each; otherwise
  // < 1 ms), and only one that holds the chosen configuration: after a failed search, or
  // where the configuration scan decided, the trial's selection holds another.
  if (!event.searched || trial->shape().output != OutputLayout::kTokenMajor || selections_.count(key)) return;
  if (!trial->selection().configuration().same_kernel(event.entry)) return;
  selections_[key] = SparsePlan::release_selection(std::move(trial));
  event.selection_kept = true;
}

const TuningEntry* SparseEngine::configuration(const SparseShape& shape, cudaStream_t stream, bool keep_selection,
                                               const void* bias) {
  const std::string key = tuning_key(shape);
  if (const auto settled = chosen_.find(key); settled != chosen_.end())
    return settled->second ? &*settled->second : nullptr;
  validate_sparse_shape(shape);
  PlanEvent event;
  event.key = key;
  event.cache_entry_refused = refused_from_cache_.count(key) > 0;
  const auto cached = cached_configuration(key);
  if (cached) {
    event.from_cache = true;
    event.entry = *cached;
  } else if (policy_ == SearchPolicy::kSearch) {
    // Search on random operands of the right shape, on a plan made for it: the choice depends
    // on the shape only.
    std::unique_ptr<SparsePlan> trial;
    if (auto prepared = prepared_trials_.extract(key)) {
      trial = std::make_unique<SparsePlan>(std::move(prepared.mapped()));
      event.selection_prepared = true;
    } else {
      trial = std::make_unique<SparsePlan>(ctx_, shape, nullptr, bias);
    }
    const SearchOperands operands(*trial, stream);
    const auto search_start = std::chrono::steady_clock::now();
    try {
      event.entry = search_configurations(*trial, operands, stream);
      event.searched = true;
    } catch (const Error& e) {
      // A failed search must not stop the run: keep the default algorithm, say so, and
      // remember nothing. If cuSPARSELt is left unusable, report the first failure too.
      event.search_error = e.what();
      try {
        const SparsePlan usable(ctx_, shape, nullptr, bias);
      } catch (const Error& again) {
        throw Error(again.kind(), std::string(again.what()) + ", after the search failed: " + e.what());
      }
    }
    // The rivals' selections are made without a bias vector; a biased shape, searched only
    // where the epilogue refused its shape's pick (biased_selection), keeps its search's pick.
    if (event.searched && shape.output == OutputLayout::kTokenMajor && !shape.bias) {
      event.search_pick = event.entry.config_id;
      try {
        Retimed retimed = retime_against_rivals(shape, operands, event.entry, trial->config_count(), stream);
        event.entry = retimed.entry;
        event.retimed = retimed.candidates;
        if (retimed.selection && keep_selection && !selections_.count(key)) {
          selections_[key] = std::move(retimed.selection);
          event.selection_kept = true;
        }
      } catch (const Error&) {  // the re-timing only refines the search's pick, which stands
      }
    }
    event.search_ms = ms_since(search_start);
    if (keep_selection) keep_searched_selection(key, std::move(trial), event);
    if (cache_ && event.searched) {
      cache_->put(key, event.entry);
      cache_->save();
    }
  }
  events_.push_back(event);
  auto& settled = chosen_[key];
  if (event.searched || event.from_cache) settled = event.entry;
  return settled ? &*settled : nullptr;
}

}  // namespace slope::gpu
