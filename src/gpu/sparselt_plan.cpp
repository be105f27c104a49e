#include "slope/gpu/sparselt_plan.hpp"

#include <nvrtc.h>

#include <memory>
#include <string>

#include "slope/core/error.hpp"
#include "slope/core/library_release.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/device_info.hpp"

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

}  // namespace slope::gpu
