// cuSPARSELt driven the way it is fast: one plan per problem shape, built once, its algorithm
// chosen by cusparseLtMatmulSearch once per (GPU, cuSPARSELt version, shape), checked against
// rival configurations under sustained load (token-major outputs) or every configuration
// (feature-major), and remembered in a tuning cache on disk. Mirrors cuSPARSELt's lifecycle
// (handle -> descriptors -> plan -> compress -> search -> workspace -> matmul) in RAII types
// that are built in place and never copied or moved: the opaque structs hold pointers to each
// other.
//
// Layout. W (m x k, 2:4 along k) is row-major and cuSPARSELt's structured A. X is either
// token-major (t x k row-major, the nn.Linear layout; op T) or feature-major (X^T, k x t
// row-major; op N). The output is either
//   feature-major: Y^T (m x t) row-major, what the next sparse product of a chain wants, or
//   token-major:   Y (t x m) row-major, i.e. a column-major m x t D, the nn.Linear layout.
// On the H200 cuSPARSELt 0.8 picks faster kernels for the token-major output (d = 768
// attention: 5.95 against 8.35 us); docs/gpu-engine.md has the measurements. Two defects of
// cuSPARSELt 0.8.0's fp16 kernels for that output, measured on the H200, shape this engine:
//   - W must be compressed through the plan (cusparseLtSpMMACompress): compressed through a
//     standalone descriptor (cusparseLtSpMMACompress2), the search fails (INTERNAL_ERROR);
//   - a plan keeps reading W from the address it first multiplied (its search included) and
//     ignores the W passed later, so every token-major weight gets a plan of its own
//     (plan_for_one_weight), never one that ran a search.
// Such a plan's cost is its algorithm selection (~0.15-0.3 s of host work); plans made from
// one selection each keep their own W and bias, so the engine makes one selection per shape
// and a plan per weight from it (SparseSelection), the one its search ran on where it searched.
#pragma once

#include <cuda_runtime.h>
#include <cusparseLt.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

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

// Random operands of one shape for timing kernel configurations: a pruned, compressed
// weight and an X, copied into enough sets (each with its own Y) to rotate past the L2, as
// the benchmarks time. Picked on L2-resident operands, a configuration can be the fastest
// only while the operands stay in the cache.
class SearchOperands {
 public:
  // W is compressed through `plan` when its output is token-major (see CompressedWeight).
  SearchOperands(const SparsePlan& plan, cudaStream_t stream);
  int count() const { return static_cast<int>(x_.size()); }
  const void* w(int set) const { return w_[static_cast<size_t>(set)].get(); }  // feature-major output only
  const void* dense_w() const { return dense_w_.get(); }                      // token-major output only
  const void* x(int set) const { return x_[static_cast<size_t>(set)].get(); }
  void* y(int set) const { return y_[static_cast<size_t>(set)].get(); }

 private:
  std::vector<DeviceBuffer> w_, x_, y_;
  DeviceBuffer dense_w_;  // pruned, uncompressed
};

// The fastest configuration for `plan`'s shape: cuSPARSELt's search (on set 0), then every
// kernel configuration timed with CUDA events over the rotated sets; `plan` keeps the library
// search's choice. A token-major output takes the library's search alone (its plans are slow
// to make), run with a W compressed through `plan`, and scans only where that search fails.
TuningEntry search_configurations(SparsePlan& plan, const SearchOperands& operands, cudaStream_t stream);

// What happened when a plan was made: searched, or taken from the tuning cache.
struct PlanEvent {
  std::string key;
  bool searched = false;
  bool from_cache = false;
  double search_ms = 0.0;  // the search (cuSPARSELt's and slope's scan), when it ran
  std::string search_error;  // non-empty when the search failed and the default was kept
  bool selection_kept = false;  // the search's algorithm selection serves the shape's plans
  bool selection_prepared = false;  // the search ran on a selection prepare_selections made
  // Token-major outputs: the configurations re-timed against the search's pick under sustained
  // load (the pick included; 0: none were), and the pick, which `entry` replaces when another
  // ran faster.
  int retimed = 0;
  int search_pick = -1;
  // cuSPARSELt refused the configuration the tuning cache held for this key (an entry written
  // by another build, or edited): the entry was set aside and the shape searched again.
  bool cache_entry_refused = false;
  TuningEntry entry;
  bool replaced_by_retiming() const { return retimed > 0 && entry.config_id != search_pick; }
};

enum class SearchPolicy {
  kSearch,   // search shapes missing from the tuning cache
  kDefault,  // never search: cuSPARSELt's default algorithm (for comparison only)
};

// Plans by shape, the tuning cache, and a log of what each plan cost.
class SparseEngine {
 public:
  // `cache` may be null: then every new shape is searched, and the choices last as long as
  // the engine.
  explicit SparseEngine(TuningCache* cache, SearchPolicy policy = SearchPolicy::kSearch);
  SparseEngine(const SparseEngine&) = delete;
  SparseEngine& operator=(const SparseEngine&) = delete;

  // The plan for `shape`, made on first use. A search runs on random scratch operands of the
  // shape (without bias: the epilogue does not change the choice); the choice is stored in
  // the tuning cache, which is saved at once (atomically). A shape with a bias gets a plan of
  // its own per bias vector, made from the same configuration where the epilogue takes it
  // (biased_selection). Feature-major outputs only.
  const SparsePlan& plan(const SparseShape& shape, cudaStream_t stream, const void* bias = nullptr);
  // A plan that must serve one compressed W only (a token-major output: see the top of this
  // file): made afresh with the configuration chosen for `shape` (tuning cache or a search on
  // a plan that is then dropped), never searched itself, from the one selection the engine
  // keeps for the shape: the dropped plan's, where the shape was searched (and has no bias).
  std::unique_ptr<SparsePlan> plan_for_one_weight(const SparseShape& shape, cudaStream_t stream,
                                                  const void* bias = nullptr);
  // Makes, on host threads, the algorithm selections that plans of these shapes will need, so
  // that a run which knows its shapes up front pays for them once in parallel rather than one
  // after another (0.15-0.3 s each for a token-major output; other outputs' cost < 1 ms and are
  // left to their first use). For a shape whose configuration is known (tuning cache, an
  // earlier search, or no search by policy) that is the shape's shared selection; for one that
  // will be searched, the selection its search will run on, which the search then keeps
  // (configuration()); a biased shape's own selection waits for its search's configuration.
  // Each host thread has a cuSPARSELt handle of its own (a handle must not be used by two
  // threads at once); a selection and the plans made from it keep using the handle it was made
  // with. Shapes already served are skipped. A selection it cannot make is left to its first
  // use, which reports the failure: only an invalid shape makes this throw.
  void prepare_selections(const std::vector<SparseShape>& shapes);
  // How many selections the engine keeps for plan_for_one_weight (one per shape).
  size_t selection_count() const { return selections_.size(); }
  // What prepare_selections did over the engine's life: selections made, wall time, threads.
  size_t prepared_selection_count() const { return prepared_count_; }
  double prepare_ms() const { return prepare_ms_; }
  int prepare_threads() const { return prepare_threads_; }
  const SparseLtContext& context() const { return ctx_; }
  const std::vector<PlanEvent>& events() const { return events_; }
  std::string tuning_key(const SparseShape& shape) const;
  SearchPolicy policy() const { return policy_; }
  // A measured yes/no choice about a shape (e.g. "wave bands pay", sparse_linear.cpp), by a
  // key that extends tuning_key(): remembered for the engine's lifetime, and in the tuning
  // cache when there is one, so that each is measured once however many layers ask.
  std::optional<bool> decision(const std::string& key) const;
  void remember_decision(const std::string& key, bool yes, double ms);

 private:
  SparseLtContext ctx_;
  TuningCache* cache_;
  SearchPolicy policy_;
  const SparsePlan& shared_plan(const SparseShape& shape, cudaStream_t stream);
  // The configuration for `shape`, decided once per shape: read from the tuning cache, or
  // searched on a plan made for the search alone. Null: cuSPARSELt's default.
  // `keep_selection`: the search's selection may become the shape's shared one (below).
  // A shape is searched without its bias epilogue, except by biased_selection; `bias` is then
  // the search plan's bias vector (any valid one), and the search's pick is not re-timed.
  const TuningEntry* configuration(const SparseShape& shape, cudaStream_t stream, bool keep_selection = false,
                                   const void* bias = nullptr);
  // The selection of `shape`, which has a bias epilogue, made with `base_config`, the
  // configuration of the same shape without bias, since one search serves both. cuSPARSELt
  // 0.8.0 offers the bias epilogue of a token-major output two kernel configurations fewer
  // than the product without it (the last two ids: 50 and 51 of 52 with token-major input,
  // 48 and 49 of 50 with feature-major input, fp16 on the H200; compute-sanitizer's timing
  // once made such a pick). Where the epilogue refuses `base_config`, the biased shape takes
  // its own (configuration()): searched on a plan with `bias` (any valid bias vector) and
  // cached under its own key, or read from there on later runs.
  std::unique_ptr<SparseSelection> biased_selection(const SparseShape& shape, const TuningEntry* base_config,
                                                    const void* bias, cudaStream_t stream);
  // A selection of `shape` with the configuration settled for its own key (configuration()).
  // Where cuSPARSELt refuses one read from the tuning cache, the entry is set aside and the
  // shape searched, as the entries of a corrupt file are; a refused search pick throws.
  std::unique_ptr<SparseSelection> settled_selection(const SparseShape& shape, const void* bias, cudaStream_t stream);
  // Forgets the choice settled for `key` and ignores the cache's entry for it from now on, where
  // that choice was read from the cache and not set aside before; false otherwise.
  bool set_aside_cached_configuration(const std::string& key);
  // The tuning cache's configuration for `key`, where the policy reads the cache and the entry
  // was not set aside.
  std::optional<TuningEntry> cached_configuration(const std::string& key) const;
  // Keeps the selection of the plan a token-major shape was searched on as the shape's shared
  // selection (plan_for_one_weight), where it holds the configuration the search settled on.
  void keep_searched_selection(const std::string& key, std::unique_ptr<SparsePlan> trial, PlanEvent& event);
  // Runs make(handle, j) for every j < jobs on up to 16 host threads, each with a cuSPARSELt
  // handle of its own (kept in thread_contexts_ for later calls); returns the threads used.
  // A job that throws is left undone: making selections ahead only saves time.
  int on_host_threads(size_t jobs, const std::function<void(const SparseLtContext&, size_t)>& make);
  // The kernel configurations a token-major search's pick is timed against, `pick` left out.
  // A product of at most one wave of output tiles (no more 128 x 128 tiles than the GPU has
  // SMs) gets all `config_count` of them: a probe that re-timed every shape so lost only on
  // larger products, and the small ones are where no other shape may have voted yet (the
  // first shape of a fresh cache). A larger product gets the three chosen
  // most often for this engine's and the tuning cache's other shapes of `shape`'s kind (same
  // GPU, cuSPARSELt, dtype and layouts): there, a wider list let kernels that win short
  // rounds but lose under sustained load replace good picks (docs/gpu-engine.md).
  std::vector<int> rival_configurations(const SparseShape& shape, int pick, int config_count) const;
  // A token-major shape's search pick timed against its rivals under sustained load over
  // rotated operands (cuSPARSELt's search times each configuration in a short burst on
  // operands that stay in the L2). Returns the faster entry and, where a rival won, the
  // rival's selection for the shape's plans to share.
  struct Retimed {
    TuningEntry entry;
    std::unique_ptr<SparseSelection> selection;
    int candidates = 0;
  };
  Retimed retime_against_rivals(const SparseShape& shape, const SearchOperands& operands, const TuningEntry& pick,
                                int config_count, cudaStream_t stream);

  // The host threads' handles (prepare_selections), declared before the selections made with
  // them so that they outlive them.
  std::vector<std::unique_ptr<SparseLtContext>> thread_contexts_;
  // Bias vectors for preparing biased shapes' selections, which need a valid one (their plans
  // bring their own); kept, since a selection's descriptor points at one.
  std::vector<DeviceBuffer> bias_placeholders_;
  // Selections for shapes still to be searched, by tuning key: the searches' plans take them.
  std::map<std::string, std::unique_ptr<SparseSelection>> prepared_trials_;
  // Declared before plans_, so that it outlives the plans made from it.
  std::map<std::string, std::unique_ptr<SparseSelection>> selections_;
  std::map<std::string, std::unique_ptr<SparsePlan>> plans_;
  // The configuration configuration() settled on, by tuning key (nullopt: cuSPARSELt's default).
  std::map<std::string, std::optional<TuningEntry>> chosen_;
  // Keys whose cached configuration cuSPARSELt refused (set_aside_cached_configuration).
  std::set<std::string> refused_from_cache_;
  std::map<std::string, bool> decisions_;
  std::vector<PlanEvent> events_;
  size_t prepared_count_ = 0;
  double prepare_ms_ = 0.0;
  int prepare_threads_ = 0;
};

}  // namespace slope::gpu
