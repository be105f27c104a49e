// cuSPARSELt driven the way it is fast: one plan per problem shape, built once, its algorithm
// chosen by cusparseLtMatmulSearch once per (GPU, cuSPARSELt version, shape), checked against
// rival configurations under sustained load (token-major outputs) or every configuration
// (feature-major), and remembered in a tuning cache on disk. The cuSPARSELt objects, the
// layouts and the defects of cuSPARSELt 0.8.0 that shape the engine are in sparselt_plan.hpp;
// the timing of configurations in configuration_search.hpp. Since a token-major plan serves one
// W only and its algorithm selection costs 0.15-0.3 s of host time, the engine makes one
// selection per shape and a plan per weight from it, the selection its search ran on where it
// searched.
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "slope/core/tuning_cache.hpp"
#include "slope/gpu/configuration_search.hpp"
#include "slope/gpu/device_buffer.hpp"
#include "slope/gpu/sparselt_plan.hpp"

namespace slope::gpu {

// The re-timing's medians over its rounds: the pick's, and the fastest rival's where one beat
// the pick (it replaces the pick only by a margin: rival_replaces_pick).
struct RetimingMedians {
  double pick_ms = 0.0;
  int fastest_rival = -1;
  double fastest_rival_ms = 0.0;
};

// What happened when a plan was made: searched, or taken from the tuning cache.
struct PlanEvent {
  std::string key;
  bool searched = false;
  bool from_cache = false;
  double search_ms = 0.0;  // the search (cuSPARSELt's and slope's scan), when it ran
  std::string search_error;  // non-empty when the search failed and the default was kept
  bool selection_kept = false;  // the search's algorithm selection serves the shape's plans
  bool selection_prepared = false;  // the search ran on a selection prepare_selections made
  // The configurations re-timed against the search's pick under sustained load (the pick
  // included; 0: none were), and the pick, which `entry` replaces when another ran faster by
  // the re-timing's margin.
  int retimed = 0;
  int search_pick = -1;
  RetimingMedians retime_medians;
  // cuSPARSELt refused the configuration the tuning cache held for this key (an entry written
  // by another build, or edited): the entry was set aside and the shape searched again.
  bool cache_entry_refused = false;
  TuningEntry entry;
  bool replaced_by_retiming() const { return retimed > 0 && entry.config_id != search_pick; }
};

// Whether a rival whose median over the re-timing's rounds is `rival_ms` replaces a pick
// timed at `pick_ms`: only when faster by a margin, 1% for a token-major output and 3% for a
// feature-major one.
bool rival_replaces_pick(OutputLayout output, double pick_ms, double rival_ms);

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
  // A plan that must serve one compressed W only (a token-major output: see
  // sparselt_plan.hpp): made afresh with the configuration chosen for `shape` (tuning cache
  // or a search on a plan that is then dropped), never searched itself, from the one
  // selection the engine keeps for the shape: the dropped plan's, where the shape was
  // searched (and has no bias).
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
  // The kernel configurations a search's pick is timed against, `pick` left out.
  // A product of at most one wave of output tiles (no more 128 x 128 tiles than the GPU has
  // SMs) gets all `config_count` of them: a probe that re-timed every shape so lost only on
  // larger products, and the small ones are where no other shape may have voted yet (the
  // first shape of a fresh cache). A larger product gets the three chosen
  // most often for this engine's and the tuning cache's other shapes of `shape`'s kind (same
  // GPU, cuSPARSELt, dtype and layouts): there, a wider list let kernels that win short
  // rounds but lose under sustained load replace good picks (docs/gpu-engine.md).
  std::vector<int> rival_configurations(const SparseShape& shape, int pick, int config_count) const;
  // A shape's search pick timed against its rivals under sustained load over rotated
  // operands: cuSPARSELt's search (token-major outputs) times each configuration in a short
  // burst on operands that stay in the L2, and the scan (feature-major) times each in a turn
  // of its own, at whatever clock the power cap allowed then. Returns the faster entry and,
  // where a rival won, the rival's selection for the shape's plans to share.
  struct Retimed {
    TuningEntry entry;
    std::unique_ptr<SparseSelection> selection;
    int candidates = 0;
    RetimingMedians medians;
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
