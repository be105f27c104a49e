#include "slope/gpu/dense_gemm.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "slope/bench/timer.hpp"
#include "slope/core/error.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/kernels.hpp"

namespace slope::gpu {
namespace {

// cuBLAS recommends 32 MiB of workspace on Hopper.
constexpr size_t kWorkspaceBytes = 32u << 20;

cudaDataType_t cuda_type(DType d) {
  switch (d) {
    case DType::kF16: return CUDA_R_16F;
    case DType::kBF16: return CUDA_R_16BF;
    case DType::kF32: return CUDA_R_32F;
  }
  return CUDA_R_16F;
}

cublasOperation_t cublas_op(Op op) { return op == Op::kN ? CUBLAS_OP_N : CUBLAS_OP_T; }

}  // namespace

std::string GemmShape::key() const {
  return std::string(op_a == Op::kN ? "N" : "T") + (op_b == Op::kN ? "N" : "T") + "|" + std::to_string(m) +
         "x" + std::to_string(n) + "x" + std::to_string(k) + "|" + std::to_string(lda) + "," +
         std::to_string(ldb) + "," + std::to_string(ldd) + "|" + to_string(dtype) + (bias ? "|bias" : "") +
         (relu ? "|relu" : "");
}

GemmShape linear_shape(int64_t t, int64_t n, int64_t k, DType dtype, bool bias, int64_t ldy) {
  GemmShape s;
  s.op_a = Op::kT;
  s.op_b = Op::kN;
  s.m = n;
  s.n = t;
  s.k = k;
  s.lda = k;
  s.ldb = k;
  s.ldd = ldy > 0 ? ldy : n;
  s.dtype = dtype;
  s.bias = bias;
  return s;
}

GemmShape feature_major_shape(int64_t t, int64_t n, int64_t k, DType dtype, bool token_major_input) {
  // Y^T row-major (n x t) is Y column-major (t x n) = X W^T: A = X, B = W (column-major k x n).
  GemmShape s;
  s.op_a = token_major_input ? Op::kT : Op::kN;  // X row-major t x k is column-major k x t
  s.op_b = Op::kN;
  s.m = t;
  s.n = n;
  s.k = k;
  s.lda = token_major_input ? k : t;
  s.ldb = k;
  s.ldd = t;
  s.dtype = dtype;
  return s;
}

GemmShape token_major_output_shape(int64_t t, int64_t n, int64_t k, DType dtype, bool token_major_input) {
  // Y row-major (t x n) is column-major n x t = W X^T: linear_shape's product, with X^T
  // (row-major k x t, column-major t x k) read through op T when the input is feature-major.
  GemmShape s = linear_shape(t, n, k, dtype);
  if (!token_major_input) {
    s.op_b = Op::kT;
    s.ldb = t;
  }
  return s;
}

GemmShape dense_twin_shape(int64_t t, int64_t n, int64_t k, DType dtype, bool token_major_input,
                           bool token_major_output) {
  return token_major_output ? token_major_output_shape(t, n, k, dtype, token_major_input)
                            : feature_major_shape(t, n, k, dtype, token_major_input);
}

void run_dense_twin(const DenseGemm& gemm, bool token_major_output, const void* x, const void* w, void* y,
                    cudaStream_t stream) {
  if (token_major_output)
    gemm.run(w, x, y, stream);
  else
    gemm.run(x, w, y, stream);
}

GemmShape input_grad_shape(int64_t t, int64_t n, int64_t k, DType dtype) {
  // Column-major dX (t x k) = dY (t x n, dY^T row-major) W (W row-major n x k is column-major
  // k x n, op T).
  return {Op::kN, Op::kT, t, k, n, t, k, t, dtype, false, false};
}

GemmShape weight_grad_shape(int64_t t, int64_t n, int64_t k, DType dtype, bool token_major_input) {
  // Column-major dW^T (k x n) = X^T dY: X row-major t x k is column-major k x t (op N);
  // X^T row-major k x t is column-major t x k (op T). dY^T row-major is column-major t x n.
  return {token_major_input ? Op::kN : Op::kT, Op::kN, k, n, t, token_major_input ? k : t, t, k, dtype, false, false};
}

CublasLtHandle::CublasLtHandle() { SLOPE_CHECK(cublasLtCreate(&handle_)); }
CublasLtHandle::~CublasLtHandle() {
  if (handle_) cublasLtDestroy(handle_);
}

DenseGemm::DenseGemm(const CublasLtHandle& handle, const GemmShape& shape, bool tune, cudaStream_t stream)
    : handle_(handle), shape_(shape) {
  require(shape.m > 0 && shape.n > 0 && shape.k > 0, "GEMM dimensions must be positive");
  require(shape.dtype != DType::kF32, "dense GEMM supports fp16 and bf16 operands");
  const cudaDataType_t type = cuda_type(shape.dtype);
  SLOPE_CHECK(cublasLtMatmulDescCreate(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_a = cublas_op(shape.op_a), op_b = cublas_op(shape.op_b);
  SLOPE_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  SLOPE_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
  if (shape.bias || shape.relu) {
    const cublasLtEpilogue_t epilogue = shape.bias ? (shape.relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS)
                                                   : CUBLASLT_EPILOGUE_RELU;
    SLOPE_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    if (shape.bias)
      SLOPE_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &type, sizeof(type)));
  }
  // Stored shapes: A is (m x k) after op, so stored k x m for op T.
  const bool at = shape.op_a == Op::kT, bt = shape.op_b == Op::kT;
  SLOPE_CHECK(cublasLtMatrixLayoutCreate(&a_, type, at ? shape.k : shape.m, at ? shape.m : shape.k, shape.lda));
  SLOPE_CHECK(cublasLtMatrixLayoutCreate(&b_, type, bt ? shape.n : shape.k, bt ? shape.k : shape.n, shape.ldb));
  SLOPE_CHECK(cublasLtMatrixLayoutCreate(&d_, type, shape.m, shape.n, shape.ldd));

  cublasLtMatmulPreference_t pref = nullptr;
  SLOPE_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  SLOPE_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                   &kWorkspaceBytes, sizeof(kWorkspaceBytes)));
  // Up to 32 candidates when tuning: for skinny products (the low-rank adapters) the good
  // split-K kernels are often not among cuBLASLt's first few.
  cublasLtMatmulHeuristicResult_t results[32] = {};
  int found = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(handle.get(), desc_, a_, b_, d_, d_, pref,
                                                               tune ? 32 : 1, results, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  SLOPE_CHECK(status);
  if (found == 0) throw Error(ErrorKind::kUnsupported, "cuBLASLt has no algorithm for GEMM " + shape.key());
  algo_ = results[0].algo;
  workspace_bytes_ = results[0].workspaceSize;
  if (tune && found > 1) tune_on_scratch(stream, found, results);
  workspace_.reserve(std::max<size_t>(workspace_bytes_, 256));
}

namespace {

// Split-K variants of cuBLASLt's candidates, for products whose output has too few tiles to
// fill the GPU (the low-rank adapters' X L: 2048 x r with K = d). cuBLASLt's heuristic
// returns at most one split for each kernel, and for these shapes it is often not the
// fastest: up to kSplitAlgos kernels that accept split-K are retried with each split and
// each reduction scheme they support.
constexpr int kSplitAlgos = 4;
constexpr int kSplits[] = {2, 4, 8, 16, 32};

// Fewer 128 x 128 output tiles than the GPU has SMs, and a long K to split.
bool few_output_tiles(const GemmShape& s) {
  int device = 0, sms = 0;
  SLOPE_CHECK(cudaGetDevice(&device));
  SLOPE_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t tiles = ((s.m + 127) / 128) * ((s.n + 127) / 128);
  return tiles < sms && s.k >= 4 * std::min(s.m, s.n);
}

std::vector<cublasLtMatmulHeuristicResult_t> split_k_variants(
    const CublasLtHandle& handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
    cublasLtMatrixLayout_t d, int count, const cublasLtMatmulHeuristicResult_t* results) {
  std::vector<cublasLtMatmulHeuristicResult_t> variants;
  int algos = 0;
  for (int i = 0; i < count && algos < kSplitAlgos; ++i) {
    int32_t split_support = 0;
    uint32_t schemes = 0;
    size_t written = 0;
    if (cublasLtMatmulAlgoCapGetAttribute(&results[i].algo, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT, &split_support,
                                          sizeof(split_support), &written) != CUBLAS_STATUS_SUCCESS ||
        split_support == 0)
      continue;
    if (cublasLtMatmulAlgoCapGetAttribute(&results[i].algo, CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK, &schemes,
                                          sizeof(schemes), &written) != CUBLAS_STATUS_SUCCESS)
      continue;
    ++algos;
    for (int32_t split : kSplits) {
      for (uint32_t scheme : {CUBLASLT_REDUCTION_SCHEME_INPLACE, CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE,
                              CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE}) {
        if ((schemes & scheme) == 0) continue;
        cublasLtMatmulHeuristicResult_t v = results[i];
        if (cublasLtMatmulAlgoConfigSetAttribute(&v.algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split, sizeof(split)) !=
                CUBLAS_STATUS_SUCCESS ||
            cublasLtMatmulAlgoConfigSetAttribute(&v.algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme,
                                                 sizeof(scheme)) != CUBLAS_STATUS_SUCCESS)
          continue;
        // The check refuses what the kernel cannot run and sizes its workspace.
        if (cublasLtMatmulAlgoCheck(handle.get(), desc, a, b, d, d, &v.algo, &v) != CUBLAS_STATUS_SUCCESS) continue;
        if (v.workspaceSize > kWorkspaceBytes) continue;
        variants.push_back(v);
      }
    }
  }
  return variants;
}

}  // namespace

void DenseGemm::tune_on_scratch(cudaStream_t stream, int count, const cublasLtMatmulHeuristicResult_t* results) {
  std::vector<cublasLtMatmulHeuristicResult_t> candidates(results, results + count);
  heuristic_candidates_ = count;
  if (few_output_tiles(shape_)) {
    const auto variants = split_k_variants(handle_, desc_, a_, b_, d_, count, results);
    candidates.insert(candidates.end(), variants.begin(), variants.end());
    split_k_candidates_ = static_cast<int>(variants.size());
  }
  const bool at = shape_.op_a == Op::kT, bt = shape_.op_b == Op::kT;
  const int64_t a_elems = shape_.lda * (at ? shape_.m : shape_.k);
  const int64_t b_elems = shape_.ldb * (bt ? shape_.k : shape_.n);
  const int64_t d_elems = shape_.ldd * shape_.n;
  // Operand sets rotated past the L2, as the benchmarks time: a memory-bound product picked
  // on L2-resident operands (a thin product's X of 16 MB fits in the 60 MB L2) is not the
  // one that is fastest from HBM.
  const int sets = bench::rotation_count(2.0 * (a_elems + b_elems + d_elems), 16);
  struct Operands {
    DeviceBuffer a, b, d;
  };
  std::vector<Operands> ops(static_cast<size_t>(sets));
  for (int i = 0; i < sets; ++i) {
    Operands& op = ops[static_cast<size_t>(i)];
    op.a = DeviceBuffer(a_elems * 2);
    op.b = DeviceBuffer(b_elems * 2);
    op.d = DeviceBuffer(d_elems * 2);
    // Random operands: zeros run faster than real data on tensor cores and would bias the pick.
    fill_uniform(op.a.get(), a_elems, 11 + 2 * i, 1.0f, shape_.dtype, stream);
    fill_uniform(op.b.get(), b_elems, 12 + 2 * i, 1.0f, shape_.dtype, stream);
  }
  DeviceBuffer bias(shape_.m * 2), ws(kWorkspaceBytes);
  fill_uniform(bias.get(), shape_.m, 13, 1.0f, shape_.dtype, stream);
  if (shape_.bias) {
    const void* ptr = bias.get();
    SLOPE_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &ptr, sizeof(ptr)));
  }
  double best = 1e30;
  const float alpha = 1.0f, beta = 0.0f;
  for (const cublasLtMatmulHeuristicResult_t& candidate : candidates) {
    auto launch = [&](int call) {
      const Operands& op = ops[static_cast<size_t>(call % sets)];
      return cublasLtMatmul(handle_.get(), desc_, &alpha, op.a.get(), a_, op.b.get(), b_, &beta, op.d.get(), d_,
                            op.d.get(), d_, &candidate.algo, ws.get(), kWorkspaceBytes, stream);
    };
    if (launch(0) != CUBLAS_STATUS_SUCCESS) continue;  // a candidate may refuse; skip it
    const double ms = bench::time_device([&](int call) { SLOPE_CHECK(launch(call)); }, stream, 5, 2, sets).median_ms;
    if (ms < best) {
      best = ms;
      algo_ = candidate.algo;
      workspace_bytes_ = candidate.workspaceSize;
    }
  }
  SLOPE_CHECK(cudaStreamSynchronize(stream));  // the scratch operands die here
}

DenseGemm::~DenseGemm() {
  if (d_) cublasLtMatrixLayoutDestroy(d_);
  if (b_) cublasLtMatrixLayoutDestroy(b_);
  if (a_) cublasLtMatrixLayoutDestroy(a_);
  if (desc_) cublasLtMatmulDescDestroy(desc_);
}

bool DenseGemm::same_algorithm(const DenseGemm& other) const {
  // cublasLtMatmulAlgo_t is opaque plain data: equal bytes, equal algorithm and configuration.
  return std::memcmp(&algo_, &other.algo_, sizeof(algo_)) == 0;
}

void DenseGemm::run(const void* a, const void* b, void* d, cudaStream_t stream, float alpha, float beta,
                    const void* bias) const {
  if (shape_.bias) {
    require(bias != nullptr, "this GEMM plan needs a bias pointer");
    SLOPE_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  }
  SLOPE_CHECK(cublasLtMatmul(handle_.get(), desc_, &alpha, a, a_, b, b_, &beta, d, d_, d, d_, &algo_,
                             workspace_.get(), workspace_bytes_, stream));
}

const DenseGemm& DenseGemmCache::get(const GemmShape& shape, cudaStream_t stream) {
  auto& slot = plans_[shape.key()];
  if (!slot) slot = std::make_unique<DenseGemm>(handle_, shape, tune_, stream);
  return *slot;
}

}  // namespace slope::gpu
