// cuSPARSELt's objects as RAII types that are built in place and never copied or moved (the
// opaque structs hold pointers to each other), in the order of cuSPARSELt's lifecycle:
// handle (SparseLtContext) -> descriptors and algorithm selection (SparseSelection) -> plan
// (SparsePlan) -> compressed weight (CompressedWeight) -> search -> workspace -> matmul.
// Choosing and remembering a plan's kernel is sparse_engine.hpp's job.
//
// Layout. W (m x k, 2:4 along k) is row-major and cuSPARSELt's structured A. X is either
// token-major (t x k row-major, the nn.Linear layout; op T) or feature-major (X^T, k x t
// row-major; op N). The output is either
//   feature-major: Y^T (m x t) row-major, what the next sparse product of a chain wants, or
//   token-major:   Y (t x m) row-major, i.e. a column-major m x t D, the nn.Linear layout.
// On the H200 cuSPARSELt 0.8 picks faster kernels for the token-major output (d = 768
// attention: 5.95 against 8.35 us); docs/gpu-engine.md has the measurements. Two defects of
// cuSPARSELt 0.8.0's fp16 kernels for that output, measured on the H200, shape these types
// and the engine:
//   - W must be compressed through the plan (cusparseLtSpMMACompress): compressed through a
//     standalone descriptor (cusparseLtSpMMACompress2), the search fails (INTERNAL_ERROR);
//   - a plan keeps reading W from the address it first multiplied (its search included) and
//     ignores the W passed later, so every token-major weight gets a plan of its own
//     (SparseEngine::plan_for_one_weight), never one that ran a search; SparseSelection, below,
//     says why that costs host time once per shape and not per weight.
#pragma once

#include <cuda_runtime.h>
#include <cusparseLt.h>

#include <deque>
#include <memory>
#include <string>

#include "slope/core/dtype.hpp"
#include "slope/core/tuning_cache.hpp"
#include "slope/gpu/device_buffer.hpp"

namespace slope::gpu {

enum class InputLayout {
  kTokenMajor,    // X: t x k row-major (rows in_ld apart)
  kFeatureMajor,  // X^T: k x t row-major
};

enum class OutputLayout {
  kFeatureMajor,  // Y^T: m x t row-major
  kTokenMajor,    // Y: t x m row-major (rows out_ld apart)
};

struct SparseShape {
  int64_t m = 0;  // rows of W: output features
  int64_t k = 0;  // columns of W: input features, the 2:4 direction
  int64_t n = 0;  // tokens
  DType dtype = DType::kF16;
  bool bias = false;  // epilogue adds a length-m bias to every column of Y^T
  InputLayout input = InputLayout::kTokenMajor;
  bool relu = false;  // epilogue applies max(x, 0) to the result
  OutputLayout output = OutputLayout::kFeatureMajor;
  int64_t out_ld = 0;  // token-major output: elements from one token's row to the next (0: m)
  int64_t in_ld = 0;   // token-major input: elements from one token's row to the next (0: k)
  std::string key() const;
};

// Throws kInvalidInput naming the dimension unless m, k and n are positive multiples of 16,
// which the sparse tensor cores require for 16-bit types.
void validate_sparse_shape(const SparseShape& shape);

class SparseLtContext {
 public:
  SparseLtContext();
  ~SparseLtContext();
  SparseLtContext(const SparseLtContext&) = delete;
  SparseLtContext& operator=(const SparseLtContext&) = delete;
  const cusparseLtHandle_t* get() const { return &handle_; }
  const std::string& version() const { return version_; }
  const std::string& gpu() const { return gpu_; }
  int sm_count() const { return sm_count_; }
  // Scratch for cusparseLtSpMMACompress2, grown on demand and shared by all weights.
  void* compress_scratch(size_t bytes) const;

 private:
  cusparseLtHandle_t handle_{};
  mutable DeviceBuffer compress_scratch_;
  std::string version_;
  std::string gpu_;
  int sm_count_ = 0;
};

class SparsePlan;

// A W of m x k in cuSPARSELt's compressed form (values, then metadata; 9/16 of the dense
// bytes). For a feature-major output the compression depends only on the matrix descriptor;
// the fp16 kernels for a token-major output need W compressed through their plan.
class CompressedWeight {
 public:
  // Bytes to allocate for a compressed W of `compressed_bytes` (cuSPARSELt's size). Some of
  // cuSPARSELt 0.8.0's sm90 kernels load the metadata's tail in 512- or 1024-byte pieces that
  // run up to 768 bytes past that size: compute-sanitizer's memcheck caught them, and with
  // its guard pages around allocations they faulted (illegal address). Every buffer that
  // holds a compressed W for a product therefore ends in this much slack, which no one reads.
  static constexpr size_t kKernelOverreadBytes = 4096;
  static size_t allocation_bytes(size_t compressed_bytes) { return compressed_bytes + kKernelOverreadBytes; }

  CompressedWeight(const SparseLtContext& ctx, int64_t m, int64_t k, DType dtype);
  // Compressed through `plan`, which must outlive this weight.
  explicit CompressedWeight(const SparsePlan& plan);
  ~CompressedWeight();
  CompressedWeight(const CompressedWeight&) = delete;
  CompressedWeight& operator=(const CompressedWeight&) = delete;

  // Compresses a dense row-major m x k matrix that is already row-wise 2:4 (prune it first:
  // cuSPARSELt keeps whatever it finds). Asynchronous on `stream`; compressions on several
  // streams at once would share the context's scratch, so slope uses one stream.
  void compress(const void* dense_pruned, cudaStream_t stream);
  const void* data() const { return buffer_.get(); }
  void* data() { return buffer_.get(); }
  size_t bytes() const { return compressed_bytes_; }  // cuSPARSELt's size, without the slack
  int64_t rows() const { return m_; }
  int64_t cols() const { return k_; }

 private:
  const SparseLtContext& ctx_;
  int64_t m_, k_;
  DType dtype_;
  const SparsePlan* plan_ = nullptr;  // set: compressed through this plan, no descriptor of its own
  cusparseLtMatDescriptor_t desc_{};
  size_t compressed_bytes_ = 0;
  size_t scratch_bytes_ = 0;
  DeviceBuffer buffer_;
};

// What a plan takes from its shape and kernel configuration alone: the matrix descriptors and
// cuSPARSELt's algorithm selection. For a token-major output, initialising the selection
// (cusparseLtMatmulAlgSelectionInit) takes 0.15-0.3 s of host time on the H200, and a plan
// made from it 0.01-0.2 ms; plans made from one selection each multiply their own W and add
// their own bias, at the same speed as plans with a selection of their own (probe at
// bffbe28, docs/gpu-engine.md). A search writes its choice into the selection, whose other
// plans may read it later (plans read their bias from their descriptor when they run), so a
// selection that plans share is never searched.
class SparseSelection {
 public:
  // A plan's own cuSPARSELt objects. A selection hands each plan a slot that no plan of the
  // selection had before: cuSPARSELt 0.8.0 takes a plan initialised from a selection at the
  // address of one of its destroyed plans for that destroyed plan ("bad initialization or
  // already destroyed"; later calls fail or crash). Slots live as long as the selection
  // (1 KB each).
  struct PlanSlot {
    cusparseLtMatmulDescriptor_t matmul{};
    cusparseLtMatmulPlan_t plan{};
  };

  // `config`: a configuration found earlier (from the tuning cache); null: the default.
  // `bias`: any valid bias vector when shape.bias (the plans bring their own).
  SparseSelection(const SparseLtContext& ctx, const SparseShape& shape, const TuningEntry* config = nullptr,
                  const void* bias = nullptr);
  ~SparseSelection();
  SparseSelection(const SparseSelection&) = delete;
  SparseSelection& operator=(const SparseSelection&) = delete;
  const SparseShape& shape() const { return shape_; }
  const SparseLtContext& context() const { return ctx_; }
  // The kernel configuration set on the selection (config id, split-K), e.g. by a search.
  TuningEntry configuration() const;

 private:
  friend class SparsePlan;
  PlanSlot& new_slot() const { return slots_.emplace_back(); }

  const SparseLtContext& ctx_;
  SparseShape shape_;
  cusparseLtMatDescriptor_t a_{}, b_{}, d_{};
  cusparseLtMatmulDescriptor_t matmul_{};  // the one the selection was made from
  cusparseLtMatmulAlgSelection_t alg_{};
  mutable std::deque<PlanSlot> slots_;  // a deque: slots keep their addresses as it grows
};

class SparsePlan {
 public:
  // A plan with a selection of its own (the only kind that may search). `config`: a
  // configuration found earlier (from the tuning cache); null: the default. `bias` (needed
  // when shape.bias): the device bias vector, fixed for the plan's life. It is set before the
  // plan is initialised: a bias pointer changed afterwards is not reliably honoured by
  // cuSPARSELt 0.8.
  SparsePlan(const SparseLtContext& ctx, const SparseShape& shape, const TuningEntry* config = nullptr,
             const void* bias = nullptr);
  // A plan with a selection of its own made beforehand (SparseEngine::prepare_selections
  // makes them on host threads); the selection's bias, if any, is the plan's.
  explicit SparsePlan(std::unique_ptr<SparseSelection> own);
  // A plan made from `selection`, which must outlive it; `bias` as above.
  explicit SparsePlan(const SparseSelection& selection, const void* bias = nullptr);
  ~SparsePlan();
  // Destroys `plan`, a plan with a selection of its own, and hands back that selection with
  // the configuration its search chose, so that the shape's later plans can be made from it
  // instead of from a second selection (0.15-0.3 s for a token-major output). Throws for a
  // plan of a shared selection.
  static std::unique_ptr<SparseSelection> release_selection(std::unique_ptr<SparsePlan> plan);
  SparsePlan(const SparsePlan&) = delete;
  SparsePlan& operator=(const SparsePlan&) = delete;

  // Runs cusparseLtMatmulSearch on the given operands; the plan keeps its choice. Only for a
  // plan with a selection of its own (throws otherwise).
  TuningEntry search(const void* w_compressed, const void* x, void* y, cudaStream_t stream);
  // Y^T = W X^T (+ bias) (+ beta Y^T), ReLU last if the shape says so. Host cost: one
  // cuSPARSELt call.
  void matmul(const void* w_compressed, const void* x, void* y, cudaStream_t stream, float beta = 0.0f) const;
  const SparseShape& shape() const { return shape_; }
  size_t workspace_bytes() const { return workspace_bytes_; }
  const SparseLtContext& context() const { return ctx_; }
  const cusparseLtMatmulPlan_t* handle() const { return &slot_.plan; }
  const SparseSelection& selection() const { return selection_; }
  int config_id() const;     // the kernel configuration in use
  int config_count() const;  // how many configurations cuSPARSELt has for this problem

 private:
  void init_plan(const cusparseLtMatmulDescriptor_t* matmul);
  void refresh_workspace();

  std::unique_ptr<SparseSelection> own_selection_;  // null: shared, owned by the engine
  const SparseSelection& selection_;
  const SparseLtContext& ctx_;
  SparseShape shape_;
  // The plan and (for a shared selection's plan) its own matmul descriptor, holding its bias.
  SparseSelection::PlanSlot& slot_;
  DeviceBuffer workspace_;
  size_t workspace_bytes_ = 0;
};

}  // namespace slope::gpu
