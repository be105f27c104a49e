#include "slope/gpu/sparse_engine.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "slope/core/error.hpp"
#include "slope/core/wall_clock.hpp"
#include "slope/gpu/cuda_check.hpp"

namespace slope::gpu {

SparseEngine::SparseEngine(TuningCache* cache, SearchPolicy policy) : cache_(cache), policy_(policy) {}

std::string SparseEngine::tuning_key(const SparseShape& shape) const {
  return ctx_.gpu() + "|cusparselt " + ctx_.version() + "|" + shape.key();
}

const SparsePlan& SparseEngine::plan(const SparseShape& shape, cudaStream_t stream, const void* bias) {
  // A shared token-major plan would multiply whichever W it saw first (sparselt_plan.hpp).
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

bool rival_replaces_pick(OutputLayout output, double pick_ms, double rival_ms) {
  // Token-major: within 1% is the timing's noise. Feature-major: configuration 0 beat the
  // scan's 25 in the rounds and then ran 4% slower beside dense, while the slow scan picks the
  // re-timing is for run about 10% slower (docs/gpu-engine.md, "Feature-major outputs").
  const double margin = output == OutputLayout::kTokenMajor ? 0.01 : 0.03;
  return rival_ms < (1.0 - margin) * pick_ms;
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
  const double pick_ms = median(candidates[0]);
  result.candidates = static_cast<int>(candidates.size());
  result.entry.search_ms = pick_ms;
  result.medians.pick_ms = pick_ms;
  if (best == 0) return result;
  const double rival_ms = median(candidates[best]);
  result.medians.fastest_rival = entries[candidates[best].entry].config_id;
  result.medians.fastest_rival_ms = rival_ms;
  if (!rival_replaces_pick(shape.output, pick_ms, rival_ms)) return result;
  result.entry = entries[candidates[best].entry];
  result.entry.search_ms = rival_ms;
  candidates[best].sets.reset();  // only the selection's own plan may remain
  result.selection = SparsePlan::release_selection(std::move(candidates[best].plan));
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
    // Both outputs are re-timed: the feature-major scan times each configuration in a turn of
    // its own, and picks that won their turn (22, 7) have run 10% slower under the layers'
    // sustained load (docs/gpu-engine.md, "Feature-major outputs").
    if (event.searched && !shape.bias) {
      event.search_pick = event.entry.config_id;
      try {
        Retimed retimed = retime_against_rivals(shape, operands, event.entry, trial->config_count(), stream);
        event.entry = retimed.entry;
        event.retimed = retimed.candidates;
        event.retime_medians = retimed.medians;
        // Only a token-major selection is worth keeping (keep_searched_selection).
        if (retimed.selection && keep_selection && shape.output == OutputLayout::kTokenMajor &&
            !selections_.count(key)) {
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
