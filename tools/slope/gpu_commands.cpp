// The GPU experiments: spmm, setup, lowrank, layer, model, memcheck.
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli_common.hpp"
#include "commands.hpp"
#include "slope/bench/timer.hpp"
#include "slope/core/dtype.hpp"
#include "slope/core/error.hpp"
#include "slope/core/tuning_cache.hpp"
#include "slope/experiments/layer_inference_experiment.hpp"
#include "slope/experiments/layer_step_experiment.hpp"
#include "slope/experiments/layer_training_experiment.hpp"
#include "slope/experiments/memory_check_experiment.hpp"
#include "slope/experiments/model_inference_experiment.hpp"
#include "slope/experiments/model_training_experiment.hpp"
#include "slope/experiments/lowrank_experiment.hpp"
#include "slope/experiments/setup_experiment.hpp"
#include "slope/experiments/spmm_experiment.hpp"
#include "slope/gpu/device_info.hpp"
#include "slope/gpu/device_support.hpp"
#include "slope/gpu/sparse_engine.hpp"
#include "slope/model/decoder_linears.hpp"
#include "slope/model/model_config.hpp"

namespace slope::cli {
namespace {

struct GpuArgs {
  std::vector<int64_t> hidden;
  std::vector<int64_t> token_list;
  std::vector<std::string> models;
  std::vector<std::string> configs;  // HuggingFace config.json files (slope model)
  int64_t layers = 2;
  std::vector<double> ratios;
  std::vector<int> accumulation;
  std::string mode = "inference";
  std::string input = "token-major";
  std::string output_layout = "feature-major";
  int64_t tokens = 2048;
  const CLI::Option* tokens_option = nullptr;  // to tell a given --tokens from the default
  std::string dtype = "fp16";
  int samples = 30;
  std::string tuning_cache;
  bool no_search = false;
  OutputOptions output;
  bool tokens_given() const { return tokens_option && tokens_option->count() > 0; }
};

// Which of the shared GPU options a command takes: only those it reads, so that CLI11 refuses
// the others as unexpected arguments.
struct GpuOptionSet {
  bool hidden = true;  // --hidden (not where the models set the shapes)
  bool timing = true;  // --tokens, --dtype, --samples
  bool sparse = true;  // --tuning-cache, --no-search (commands that run cuSPARSELt's search)
};

void add_gpu_options(CLI::App& sub, GpuArgs& a, GpuOptionSet set = {}) {
  if (set.hidden) sub.add_option("--hidden", a.hidden, "Hidden size d (repeatable); default: the paper's eight");
  if (set.timing) {
    a.tokens_option = sub.add_option("--tokens", a.tokens, "Tokens per product (default 2048)");
    sub.add_option("--dtype", a.dtype, "fp16 or bf16 (default fp16)")->check(CLI::IsMember({"fp16", "bf16"}));
    sub.add_option("--samples", a.samples,
                   "Timing samples per measurement, the median reported (default " + std::to_string(a.samples) + ")");
  }
  if (set.sparse) {
    sub.add_option("--tuning-cache", a.tuning_cache,
                   "cuSPARSELt tuning cache file (default $XDG_CACHE_HOME/slope/tuning.json)")
        ->check(CLI::Validator([](std::string& path) { return TuningCache::why_unsavable(path); }, "FILE"));
    sub.add_flag("--no-search", a.no_search, "Use cuSPARSELt's default algorithm (no search, no cache)");
  }
  add_output_options(sub, a.output);
}

// The sweep options every GPU experiment shares, from the command line.
void fill_sweep(SweepOptions& o, const GpuArgs& a) {
  if (!a.hidden.empty()) o.hidden = a.hidden;
  o.tokens = a.tokens;
  o.dtype = parse_dtype(a.dtype);
  o.samples = a.samples;
}

void validate(const GpuArgs& a) {
  require(a.tokens > 0 && a.tokens % 16 == 0, "--tokens must be a positive multiple of 16 (got " +
                                                  std::to_string(a.tokens) + ")");
  require(a.samples > 0, "--samples must be positive");
  for (int64_t d : a.hidden) require(d > 0 && d % 16 == 0, "--hidden must be a positive multiple of 16 (got " + std::to_string(d) + ")");
  require_distinct(a.hidden, "--hidden");
  require_distinct(a.token_list, "--token-count");
  require_distinct(a.accumulation, "--accumulation");
}

// The metadata every GPU result file carries. `timing`: how its device times were taken
// (bench::kGraphTiming or kEagerTiming), or null for a file that times nothing.
Metadata run_metadata(const std::string& experiment, const GpuArgs& a, const gpu::DeviceInfo& info,
                      const char* timing) {
  Metadata meta = base_metadata();
  meta.emplace_back("experiment", experiment);
  gpu::append_device_metadata(meta, info);
  meta.emplace_back("dtype", a.dtype);
  meta.emplace_back("tokens", std::to_string(a.tokens));
  if (timing) meta.emplace_back("timing", timing);
  return meta;
}

// The tuning cache's file. A path given with --tuning-cache was checked as the command line
// was read; the default one is checked here, before any GPU work: a cache that cannot be
// saved would fail the run at its first search.
std::string tuning_cache_path(const GpuArgs& a) {
  if (!a.tuning_cache.empty()) return a.tuning_cache;
  std::string path = default_tuning_cache_path();
  if (a.no_search) return path;  // neither read nor written
  if (const std::string why = TuningCache::why_unsavable(path); !why.empty())
    throw Error(ErrorKind::kIo, "tuning cache: " + why + " (--tuning-cache FILE picks another)");
  return path;
}

// Everything a GPU command shares: the device check, the tuning cache, the engines, and the
// metadata of the run.
struct GpuSession {
  explicit GpuSession(const GpuArgs& a)
      : cache(tuning_cache_path(a)),
        engine(a.no_search ? nullptr : &cache, a.no_search ? gpu::SearchPolicy::kDefault : gpu::SearchPolicy::kSearch),
        dense(true) {
    for (const auto& w : cache.warnings()) std::cerr << "slope: warning: " << w << "\n";
    info = gpu::query_device_info();
    progress("GPU: " + info.name + ", driver " + info.driver + ", cuSPARSELt " + info.cusparselt +
             ", tuning cache " + (a.no_search ? std::string("off") : cache.path()));
  }
  Metadata metadata(const std::string& experiment, const GpuArgs& a, const char* timing) const {
    Metadata meta = run_metadata(experiment, a, info, timing);
    const PlanCounts c = plan_counts();
    meta.emplace_back("plans_searched", std::to_string(c.searched));
    meta.emplace_back("plans_from_tuning_cache", std::to_string(c.cached));
    meta.emplace_back("search_total_ms", fmt::format("{:.1f}", c.search_ms));
    // Token-major searches whose pick was timed against its rivals under sustained load, and
    // how many of those a rival won.
    meta.emplace_back("searches_retimed", std::to_string(c.retimed));
    meta.emplace_back("searches_changed_by_retiming", std::to_string(c.changed));
    // Token-major shapes: algorithm selections kept (the costly part of their plans), and how
    // many of them are the ones the searches ran on rather than made afresh.
    meta.emplace_back("token_major_selections", std::to_string(engine.selection_count()));
    meta.emplace_back("selections_kept_from_search", std::to_string(c.selections_kept));
    // Of those, made beforehand on host threads (SparseEngine::prepare_selections), and the
    // wall time that took.
    meta.emplace_back("selections_prepared", std::to_string(engine.prepared_selection_count()));
    meta.emplace_back("selection_prepare_ms", fmt::format("{:.1f}", engine.prepare_ms()));
    meta.emplace_back("selection_prepare_threads", std::to_string(engine.prepare_threads()));
    return meta;
  }
  void report_plans() const {
    for (const auto& e : engine.events()) {
      if (e.cache_entry_refused)
        std::cerr << "slope: warning: cuSPARSELt refused the tuning cache's configuration for " << e.key
                  << "; searched it again\n";
      if (!e.search_error.empty())
        std::cerr << "slope: warning: search failed for " << e.key << ", default algorithm kept: " << e.search_error
                  << "\n";
    }
    const PlanCounts c = plan_counts();
    progress(fmt::format("plans: {} searched ({:.1f} s of search; {} picks re-timed against their rivals, {} "
                         "replaced), {} from the tuning cache{}; {} token-major algorithm selections, {} of them "
                         "the searches' own; {} made beforehand on {} host threads in {:.1f} s",
                         c.searched, c.search_ms / 1000, c.retimed, c.changed, c.cached,
                         c.searched == 0 ? " - no search ran" : "", engine.selection_count(), c.selections_kept,
                         engine.prepared_selection_count(), engine.prepare_threads(), engine.prepare_ms() / 1000));
    for (const auto& e : engine.events()) {
      const gpu::RetimingMedians& m = e.retime_medians;
      if (e.replaced_by_retiming())
        progress(fmt::format("re-timed {}: configuration {} (the search's pick, {:.4f} ms) -> {} ({:.4f} ms)", e.key,
                             e.search_pick, m.pick_ms, e.entry.config_id, m.fastest_rival_ms));
      else if (m.fastest_rival >= 0)  // a rival won the rounds, by less than the margin
        progress(fmt::format("re-timed {}: configuration {} kept ({:.4f} ms; {} took {:.4f} ms, {:.1f}% less, "
                             "under the margin)",
                             e.key, e.search_pick, m.pick_ms, m.fastest_rival, m.fastest_rival_ms,
                             100.0 * (1.0 - m.fastest_rival_ms / m.pick_ms)));
    }
  }

  struct PlanCounts {
    int searched = 0, cached = 0, selections_kept = 0, retimed = 0, changed = 0;
    double search_ms = 0;
  };
  PlanCounts plan_counts() const {
    PlanCounts c;
    for (const auto& e : engine.events()) {
      c.searched += e.searched;
      c.cached += e.from_cache;
      c.search_ms += e.search_ms;
      c.selections_kept += e.selection_kept;
      c.retimed += e.retimed > 0;
      c.changed += e.replaced_by_retiming();
    }
    return c;
  }

  TuningCache cache;
  gpu::SparseEngine engine;
  gpu::DenseGemmCache dense;
  gpu::DeviceInfo info;
};

void emit_with_summary(const Table& table, Metadata meta, const Metadata& summary, const OutputOptions& out) {
  for (const auto& kv : summary) {
    meta.push_back(kv);
    progress(kv.first + " = " + kv.second);
  }
  emit(table, meta, out);
}

// Runs one experiment in a fresh GpuSession: reports the plans, then writes the table with
// the run's metadata and the experiment's summary. `wall_s` (session start to results, plans
// and searches included) lets runs with and without a warm tuning cache be compared.
template <typename Experiment>
void run_in_session(const GpuArgs& a, const std::string& name, const char* timing, Experiment&& experiment) {
  const auto start = std::chrono::steady_clock::now();
  GpuSession session(a);
  Metadata summary;
  const Table table = experiment(session, summary);
  session.report_plans();
  const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - start;
  summary.emplace_back("wall_s", fmt::format("{:.1f}", wall.count()));
  emit_with_summary(table, session.metadata(name, a, timing), summary, a.output);
}

void run_spmm(const GpuArgs& a) {
  validate(a);
  SpmmOptions o;
  fill_sweep(o, a);
  o.input = a.input == "feature-major" ? gpu::InputLayout::kFeatureMajor : gpu::InputLayout::kTokenMajor;
  o.output = a.output_layout == "feature-major" ? gpu::OutputLayout::kFeatureMajor : gpu::OutputLayout::kTokenMajor;
  run_in_session(a, "spmm", bench::kPairedGraphTiming, [&](GpuSession& g, Metadata& summary) {
    return run_spmm_experiment(o, g.engine, g.dense, summary, progress);
  });
}

void run_setup(const GpuArgs& a) {
  validate(a);
  SetupOptions o;
  fill_sweep(o, a);
  run_in_session(a, "setup", bench::kGraphTiming, [&](GpuSession& g, Metadata& summary) {
    return run_setup_experiment(o, g.engine, g.dense, summary, progress);
  });
}

void run_lowrank(const GpuArgs& a) {
  validate(a);
  LowRankOptions o;
  fill_sweep(o, a);
  for (double r : a.ratios) require(r > 0 && r <= 1, fmt::format("--rank-ratio must be in (0, 1] (got {})", r));
  require_distinct(a.ratios, "--rank-ratio");
  if (!a.ratios.empty()) o.ratios = a.ratios;
  gpu::require_cuda_device();
  const gpu::DeviceInfo info = gpu::query_device_info();
  Metadata summary;
  const Table table = run_lowrank_experiment(o, summary, progress);
  emit_with_summary(table, run_metadata("lowrank", a, info, bench::kGraphTiming), summary, a.output);
}

void run_layer(const GpuArgs& a) {
  validate(a);
  const bool token_major_out = a.output_layout == "token-major";
  require(!token_major_out || a.mode == "inference", "--output-layout token-major is for --mode inference only");
  // Each mode reads its own options; one given to a mode that would ignore it is refused
  // rather than dropped without a word.
  require(a.token_list.empty() || a.mode == "training",
          "--token-count is for --mode training only (inference and step take --tokens)");
  require(!a.tokens_given() || a.mode != "training", "--tokens is for --mode inference and step (training takes --token-count)");
  require(a.accumulation.empty() || a.mode == "step", "--accumulation is for --mode step only");
  require(a.ratios.empty() || a.mode != "training",
          "--adapter-ratio is for --mode inference and step (the training layers have no adapters)");
  require_adapter_ratios(a.ratios);
  if (a.mode == "training") {
    LayerTrainingOptions o;
    if (!a.hidden.empty()) o.hidden = a.hidden;
    for (int64_t t : a.token_list) require(t > 0 && t % 16 == 0, "--token-count must be a positive multiple of 16");
    if (!a.token_list.empty()) o.tokens = a.token_list;
    o.dtype = parse_dtype(a.dtype);
    o.samples = a.samples;
    run_in_session(a, "layer_training", bench::kPairedGraphTiming, [&](GpuSession& g, Metadata& summary) {
      return run_layer_training_experiment(o, g.engine, g.dense, summary, progress);
    });
    return;
  }
  if (a.mode == "step") {
    LayerStepOptions o;
    if (!a.hidden.empty()) o.hidden = a.hidden;
    o.tokens = a.tokens;
    for (int n : a.accumulation) require(n > 0 && n <= 1024, "--accumulation must be in 1..1024 (got " + std::to_string(n) + ")");
    if (!a.accumulation.empty()) o.accumulation = a.accumulation;
    if (!a.ratios.empty()) o.adapter_ratios = a.ratios;
    o.dtype = parse_dtype(a.dtype);
    o.samples = a.samples;
    // Eager: the optimizer step reads the gradient norm on the host.
    run_in_session(a, "layer_step", bench::kEagerTiming, [&](GpuSession& g, Metadata& summary) {
      return run_layer_step_experiment(o, g.engine, g.dense, summary, progress);
    });
    return;
  }
  LayerInferenceOptions o;
  fill_sweep(o, a);
  if (token_major_out) o.output = gpu::OutputLayout::kTokenMajor;
  if (!a.ratios.empty()) o.adapter_ratios = a.ratios;
  run_in_session(a, "layer_inference", bench::kPairedGraphTiming, [&](GpuSession& g, Metadata& summary) {
    return run_layer_inference_experiment(o, g.engine, g.dense, summary, progress);
  });
}

// The per-model training experiment times its phases from graphs and its whole steps
// eagerly (the optimizer reads its gradient norm on the host).
constexpr char kModelTrainingTiming[] =
    "phases: CUDA events around replayed CUDA graphs of each sample's calls, sparse and dense samples interleaved, "
    "inputs rotated past the L2; step: CUDA events around eager launches, sparse and dense samples interleaved";

// The models a `slope model` run times: zoo names, then config files. Every product goes
// through the sparse engine's own shape check here, before any GPU work, so that a model the
// sparse tensor cores cannot take is refused as bad input.
std::vector<ModelConfig> models_to_time(const GpuArgs& a, int64_t tokens) {
  std::vector<ModelConfig> models = named_models(a.models, a.configs);
  for (const ModelConfig& m : models)
    for (const DecoderLinear& l : decoder_linears(m)) {
      try {
        gpu::validate_sparse_shape({l.d_out, l.d_in, tokens, parse_dtype(a.dtype)});
      } catch (const Error& e) {
        throw Error(ErrorKind::kInvalidInput,
                    fmt::format("model '{}': its {} ({} x {}) does not suit the sparse tensor cores, which need "
                                "multiples of 16: {}",
                                m.name, l.name, l.d_out, l.d_in, e.what()));
      }
    }
  return models;
}

void run_model_training(const GpuArgs& a) {
  require(a.ratios.empty(), "--adapter-ratio is for --mode inference only (SLoPe pretrains without adapters)");
  require(a.accumulation.size() <= 1, "--accumulation takes one value for slope model");
  for (int n : a.accumulation)
    require(n >= 0 && n <= 1024, "--accumulation must be in 0..1024 (got " + std::to_string(n) + ")");
  ModelTrainingOptions o;
  if (a.tokens_given()) o.tokens = a.tokens;
  o.models = models_to_time(a, o.tokens);
  if (!a.accumulation.empty()) o.accumulation = a.accumulation.front();
  o.dtype = parse_dtype(a.dtype);
  o.samples = a.samples;
  GpuArgs recorded = a;  // the metadata names the tokens the run used
  recorded.tokens = o.tokens;
  run_in_session(recorded, "model_training", kModelTrainingTiming, [&](GpuSession& g, Metadata& summary) {
    return run_model_training_experiment(o, g.engine, g.dense, summary, progress);
  });
}

void run_model(const GpuArgs& a) {
  validate(a);
  if (a.mode == "training") return run_model_training(a);
  require(a.accumulation.empty(), "--accumulation is for --mode training only");
  ModelInferenceOptions o;
  o.models = models_to_time(a, a.tokens);
  require_adapter_ratios(a.ratios);
  if (!a.ratios.empty()) o.adapter_ratios = a.ratios;
  o.tokens = a.tokens;
  o.dtype = parse_dtype(a.dtype);
  o.samples = a.samples;
  run_in_session(a, "model_inference", bench::kPairedGraphTiming, [&](GpuSession& g, Metadata& summary) {
    return run_model_inference_experiment(o, g.engine, g.dense, summary, progress);
  });
}

void run_memcheck(const GpuArgs& a) {
  require(a.layers > 0, "--layers must be positive");
  MemoryCheckOptions o;
  o.layers = a.layers;
  const std::vector<std::string> names = a.models.empty() ? std::vector<std::string>{"OPT-2.7B", "LLaMA-3-8B"} : a.models;
  o.models = named_models(names, {});
  GpuSession session(a);
  const Table table = run_memory_check_experiment(o, session.engine, session.dense);
  emit(table, session.metadata("memory_measured", a, nullptr), a.output);
}

}  // namespace

std::string gpu_build_description() {
  return fmt::format("cuSPARSELt {} headers, CUDA architectures {}", gpu::built_cusparselt_release().str(),
                     gpu::built_cuda_architectures());
}

void register_gpu_commands(CLI::App& app) {
  auto spmm = std::make_shared<GpuArgs>();
  spmm->output_layout = "token-major";  // the Y = X W^T, and cuSPARSELt's faster kernels
  CLI::App* s = app.add_subcommand("spmm", "2:4 sparse vs dense products for the paper's linear shapes (GPU)");
  add_gpu_options(*s, *spmm);
  s->add_option("--input", spmm->input, "Layout of X: token-major (t x k, default) or feature-major (X^T, k x t)")
      ->check(CLI::IsMember({"token-major", "feature-major"}));
  s->add_option("--output-layout", spmm->output_layout,
                "Layout of Y: token-major (t x m, nn.Linear's, default) or feature-major (Y^T, m x t, what a chain "
                "of feature-major layers wants)")
      ->check(CLI::IsMember({"token-major", "feature-major"}));
  s->callback([spmm] { run_spmm(*spmm); });

  auto setup = std::make_shared<GpuArgs>();
  CLI::App* u = app.add_subcommand("setup", "cuSPARSELt setup overhead per d x d weight (GPU)");
  add_gpu_options(*u, *setup);
  u->callback([setup] { run_setup(*setup); });

  auto lowrank = std::make_shared<GpuArgs>();
  CLI::App* l = app.add_subcommand("lowrank", "Low-rank product (X L) R time vs rank ratio (GPU)");
  add_gpu_options(*l, *lowrank, {.sparse = false});  // cuBLASLt only: no cuSPARSELt search
  l->add_option("--rank-ratio", lowrank->ratios, "Rank as a fraction of d (repeatable); default 1, .1, .05, .02, .01");
  l->callback([lowrank] { run_lowrank(*lowrank); });

  auto layer = std::make_shared<GpuArgs>();
  CLI::App* y = app.add_subcommand("layer", "SLoPe layers vs dense layers (GPU)");
  add_gpu_options(*y, *layer);
  y->add_option("--mode", layer->mode, "inference, training (per phase) or step (a whole training step)")
      ->check(CLI::IsMember({"inference", "training", "step"}));
  y->add_option("--accumulation", layer->accumulation, "Step: micro-batches per optimizer step (repeatable); default 1, 4, 16");
  y->add_option("--adapter-ratio", layer->ratios, "Adapter rank / hidden size (repeatable); default 0, 1/64, 1/16 (step: 0, 1/64)");
  y->add_option("--token-count", layer->token_list, "Training: tokens per micro-batch (repeatable); default 2048, 8192");
  y->add_option("--output-layout", layer->output_layout,
                "Inference: layout of every layer's Y, feature-major (Y^T, default) or token-major (t x d_out)")
      ->check(CLI::IsMember({"token-major", "feature-major"}));
  y->callback([layer] { run_layer(*layer); });

  auto model = std::make_shared<GpuArgs>();
  CLI::App* md = app.add_subcommand(
      "model",
      "One decoder block's linear layers per model, SLoPe vs dense, beside the paper's speedups: inference or "
      "training (GPU)");
  add_gpu_options(*md, *model, {.hidden = false});
  md->add_option("--mode", model->mode, "inference (default; 2048 tokens) or training (per phase; 8192 tokens)")
      ->check(CLI::IsMember({"inference", "training"}));
  md->add_option("--model", model->models, "Zoo model (repeatable); default the paper's seven");
  md->add_option("--config", model->configs, "HuggingFace config.json of a model to time (repeatable)");
  md->add_option("--accumulation", model->accumulation,
                 "Training: micro-batches per optimizer step in the step row (default 4; 0: no step row)");
  md->add_option("--adapter-ratio", model->ratios,
                 "Inference: adapter rank / hidden size (repeatable); default 0, 1/64, 1/16");
  md->callback([model] { run_model(*model); });

  auto memcheck = std::make_shared<GpuArgs>();
  CLI::App* c = app.add_subcommand("memcheck", "Measured GPU bytes of N decoder layers vs the memory model (GPU)");
  add_gpu_options(*c, *memcheck, {.hidden = false, .timing = false});  // its state is fp16 and token-free
  c->add_option("--model", memcheck->models, "Zoo model (repeatable); default OPT-2.7B and LLaMA-3-8B");
  c->add_option("--layers", memcheck->layers, "Decoder layers to allocate (default 2)");
  c->callback([memcheck] { run_memcheck(*memcheck); });
}

}  // namespace slope::cli
