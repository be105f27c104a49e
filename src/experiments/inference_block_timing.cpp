#include "slope/experiments/inference_block_timing.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

#include "slope/bench/timer.hpp"
#include "slope/core/error.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/stream.hpp"
#include "slope/model/memory_model.hpp"

namespace slope {
namespace {

// One copy of the block's weights and activations; several are rotated past the L2. `x`
// holds the first layer's input, and every layer's when the block is not chained.
struct DenseSet {
  std::vector<gpu::DeviceBuffer> w, x, out;
};

struct SparseSet {
  std::vector<std::unique_ptr<gpu::SparseInferenceLinear>> layers;
  std::vector<gpu::DeviceBuffer> x, out;
};

}  // namespace

std::vector<InferenceBlockRow> time_inference_block(const std::vector<BlockLinear>& defs, int64_t hidden,
                                                    const std::vector<double>& adapter_ratios,
                                                    const InferenceBlockOptions& o, gpu::SparseEngine& engine,
                                                    gpu::DenseGemmCache& dense) {
  require(!defs.empty() && !o.forms.empty(), "an inference block needs a layer and an adapter form");
  gpu::Stream owned_stream;  // a created stream: its calls can be captured and timed as a graph
  cudaStream_t stream = owned_stream.get();
  const int64_t t = o.tokens;
  const bool token_major_out = o.output == gpu::OutputLayout::kTokenMajor;
  const size_t n = defs.size();
  const size_t inputs = o.chained ? 1 : n;
  double weight_bytes = 0, act_bytes = 0;
  for (size_t j = 0; j < n; ++j) {
    weight_bytes += 2.0 * defs[j].d_out * defs[j].d_in;
    act_bytes += 2.0 * t * defs[j].d_out + (j < inputs ? 2.0 * t * defs[j].d_in : 0.0);
  }
  const int sets = bench::rotation_count(weight_bytes + act_bytes, o.max_rotation);

  // Dense baseline: the same products on cuBLASLt, ReLU in its epilogue.
  std::vector<DenseSet> dsets(static_cast<size_t>(sets));
  std::vector<const gpu::DenseGemm*> gemms;
  for (const auto& l : defs) {
    const bool token_major_in = l.input == gpu::InputLayout::kTokenMajor;
    gpu::GemmShape g = gpu::dense_twin_shape(t, l.d_out, l.d_in, o.dtype, token_major_in, token_major_out);
    g.relu = l.relu;
    gemms.push_back(&dense.get(g, stream));
  }
  for (int i = 0; i < sets; ++i) {
    DenseSet& s = dsets[static_cast<size_t>(i)];
    for (size_t j = 0; j < n; ++j) {
      if (j < inputs) {
        s.x.emplace_back(t * defs[j].d_in * 2);
        gpu::fill_uniform(s.x.back().get(), t * defs[j].d_in, 40 + i * 7 + j, 1.0f, o.dtype, stream);
      }
      s.w.emplace_back(defs[j].d_out * defs[j].d_in * 2);
      s.out.emplace_back(t * defs[j].d_out * 2);
      gpu::fill_uniform(s.w.back().get(), defs[j].d_out * defs[j].d_in, 50 + i * 7 + j, 0.05f, o.dtype, stream);
      gpu::prune_rows_2to4(s.w.back().get(), s.w.back().get(), nullptr, defs[j].d_out, defs[j].d_in, o.dtype, stream);
    }
  }
  auto run_dense = [&](int call) {
    DenseSet& s = dsets[static_cast<size_t>(call % sets)];
    for (size_t j = 0; j < n; ++j) {
      const void* in = o.chained && j > 0 ? s.out[j - 1].get() : s.x[j].get();
      gpu::run_dense_twin(*gemms[j], token_major_out, in, s.w[j].get(), s.out[j].get(), stream);
    }
  };

  // The layers' specs of one (rank, form), shared by every copy, and the width of each layer's
  // output buffer. Chained, each output buffer is as wide as the layer writes (the merged
  // form's X L past Y) and as the next layer reads (the folded form's adapter features past
  // its d_in); token-major, that width is the rows' stride.
  auto block_specs = [&](int64_t rank, gpu::AdapterForm form, std::vector<int64_t>& out_width) {
    std::vector<gpu::InferenceLinearSpec> specs;
    for (const auto& l : defs) {
      specs.push_back({l.d_out, l.d_in, rank, t, o.dtype, l.input, false, l.relu, form, o.output});
      specs.back().projection_rows = l.projection_rows;
    }
    out_width.clear();
    for (size_t j = 0; j < n; ++j)
      out_width.push_back(o.chained && j + 1 < n ? std::max(gpu::output_rows(specs[j]), gpu::input_width(specs[j + 1]))
                                                 : gpu::output_rows(specs[j]));
    if (token_major_out && o.chained)
      for (size_t j = 0; j < n; ++j) {
        specs[j].output_ld = out_width[j];
        if (j > 0) specs[j].input_ld = out_width[j - 1];
      }
    return specs;
  };
  auto forms_at = [&](int64_t rank) {
    return rank == 0 ? std::vector<gpu::AdapterForm>{gpu::AdapterForm::kMerged} : o.forms;
  };
  // Every sparse shape the blocks below will plan, their algorithm selections made at once on
  // host threads (sparse_engine.hpp) rather than one by one as the layers are built.
  std::vector<gpu::SparseShape> shapes;
  for (double ratio : adapter_ratios) {
    const int64_t rank = adapter_rank(ratio, hidden);
    for (gpu::AdapterForm form : forms_at(rank)) {
      std::vector<int64_t> out_width;
      for (const auto& spec : block_specs(rank, form, out_width)) {
        const auto more = gpu::inference_linear_shapes(engine, spec);
        shapes.insert(shapes.end(), more.begin(), more.end());
      }
    }
  }
  engine.prepare_selections(shapes);

  // The sparse layers of one (rank, form), `sets` copies with their activations.
  auto build_sparse = [&](int64_t rank, gpu::AdapterForm form) {
    std::vector<int64_t> out_width;
    const std::vector<gpu::InferenceLinearSpec> specs = block_specs(rank, form, out_width);
    std::vector<SparseSet> ssets(static_cast<size_t>(sets));
    for (int i = 0; i < sets; ++i) {
      SparseSet& s = ssets[static_cast<size_t>(i)];
      for (size_t j = 0; j < n; ++j) {
        const auto& l = defs[j];
        // L and R of every projection's adapter side by side (at least one element each).
        const int64_t r = std::max<int64_t>(specs[j].rank, 1) * gpu::projection_count(specs[j]);
        auto layer = std::make_unique<gpu::SparseInferenceLinear>(engine, dense, specs[j], stream);
        gpu::DeviceBuffer w(l.d_out * l.d_in * 2), lw(l.d_in * r * 2), rw(r * l.d_out * 2);
        gpu::fill_uniform(w.get(), l.d_out * l.d_in, 50 + i * 7 + j, 0.05f, o.dtype, stream);
        gpu::fill_uniform(lw.get(), l.d_in * r, 60 + i * 7 + j, 0.05f, o.dtype, stream);
        gpu::fill_uniform(rw.get(), r * l.d_out, 70 + i * 7 + j, 0.05f, o.dtype, stream);
        layer->set_weights(w.get(), lw.get(), rw.get(), nullptr, stream);
        s.layers.push_back(std::move(layer));
        if (j < inputs) {
          const int64_t width = gpu::input_width(specs[j]);
          s.x.emplace_back(t * width * 2);
          gpu::fill_uniform(s.x.back().get(), t * width, 40 + i * 7 + j, 1.0f, o.dtype, stream);
        }
        s.out.emplace_back(out_width[j] * t * 2);
      }
    }
    return ssets;
  };
  auto runner = [&](std::vector<SparseSet>& ssets) {
    return [&ssets, &sets, &o, stream](int call) {
      SparseSet& s = ssets[static_cast<size_t>(call % sets)];
      for (size_t j = 0; j < s.layers.size(); ++j) {
        // Y^T is the first rows of a chained layer's output (Y the first columns): the next input.
        void* in = o.chained && j > 0 ? s.out[j - 1].get() : s.x[j].get();
        s.layers[j]->forward(in, s.out[j].get(), stream);
      }
    };
  };

  std::vector<InferenceBlockRow> rows;
  // Reported from its pairing with the first sparse block (r = 0 when the ratios start at 0).
  double dense_ms = NAN;
  std::vector<SparseSet> r0_sets;  // kept: every adapter form is paired with it as well
  double r0_ms = NAN;              // r = 0's time beside dense, for ratios that round to rank 0 too
  double r0_speedup = NAN;         // dense / r = 0, both from that pairing
  for (double ratio : adapter_ratios) {
    const int64_t rank = adapter_rank(ratio, hidden);
    std::map<gpu::AdapterForm, double> form_ms, form_overhead;
    for (gpu::AdapterForm form : forms_at(rank)) {
      if (rank == 0 && !r0_sets.empty()) {  // a small ratio rounded to rank 0: measured already
        form_ms[form] = r0_ms;
        continue;
      }
      std::vector<SparseSet> ssets = build_sparse(rank, form);
      const auto run_sparse = runner(ssets);
      // Every form interleaved with dense: a form's time and r = 0's are then taken under the
      // same conditions (timed alone, large sparse layers ran up to 18% faster than beside
      // dense, which would flatter whichever form was timed alone).
      const bench::PairTiming paired = bench::time_pair(run_dense, run_sparse, stream, o.samples, 5, sets);
      if (std::isnan(dense_ms)) dense_ms = paired.a.median_ms;
      form_ms[form] = paired.b.median_ms;
      if (rank == 0) {
        r0_sets = std::move(ssets);
        r0_ms = paired.b.median_ms;
        r0_speedup = paired.a.median_ms / paired.b.median_ms;
      } else if (!r0_sets.empty()) {
        // The adapter's overhead from samples interleaved with the r = 0 block: two pairings
        // with dense taken minutes apart had put the same r = 0 layer 10-18% apart on the lent
        // H200 (and a few adapter forms "faster" than r = 0).
        const auto run_r0 = runner(r0_sets);
        form_overhead[form] = bench::time_pair(run_sparse, run_r0, stream, o.samples, 5, sets).ratio_median - 1.0;
      }
    }
    // The engine would run the fastest form (by its overhead over r = 0, the better measured
    // comparison); report it, and each form's time beside dense.
    InferenceBlockRow row;
    row.ratio = ratio;
    row.rank = rank;
    row.dense_ms = dense_ms;
    const auto& rank_by = form_overhead.empty() ? form_ms : form_overhead;
    gpu::AdapterForm fastest = rank_by.begin()->first;  // o.forms need not hold the merged form
    for (const auto& [f, v] : rank_by)
      if (v < rank_by.at(fastest)) fastest = f;
    row.sparse_ms = form_ms[fastest];
    row.form = rank == 0 ? "none" : gpu::to_string(fastest);
    row.form_ms = form_ms;
    row.overhead = form_overhead.count(fastest) ? form_overhead[fastest] : (rank == 0 ? 0.0 : NAN);
    row.speedup_via_r0 = r0_speedup / (1.0 + row.overhead);  // overhead is 0 at r = 0
    rows.push_back(row);
  }
  return rows;
}

}  // namespace slope
