#include <cmath>

#include "gpu_test.hpp"
#include "slope/core/nm_prune.hpp"
#include "slope/core/random.hpp"
#include "slope/gpu/inference_linear.hpp"

namespace slope::testing {
namespace {

struct Case {
  DType dtype;
  int64_t t, d_out, d_in, rank;
  gpu::InputLayout input;
  bool bias, relu;
  // Fused projections, each with its own adapter of `rank` (empty: one projection).
  std::vector<int64_t> projection_rows = {};
  int64_t projections() const { return projection_rows.empty() ? 1 : static_cast<int64_t>(projection_rows.size()); }
};

class InferenceLinear : public GpuTest, public ::testing::WithParamInterface<Case> {};

// relu(X W'^T + X L' R + b) with W' = W pruned 2:4 by rows and L' = L pruned 2:4 along d_in
// (the rows of L^T): what every form must compute. With fused projections, L = [L_1 ... L_P]
// and R_p (rows p rank..) reaches only projection p's columns: R is taken block-diagonal.
MatrixF reference(const Case& c, const MatrixF& x, const MatrixF& w, const MatrixF& l, const MatrixF& r,
                  const std::vector<float>& b) {
  MatrixF y = linear_forward(x, prune(w, {2, 4}, PruneAxis::kRows), c.bias ? &b : nullptr);
  if (c.rank > 0) {
    const MatrixF l_pruned = transpose(prune(transpose(l), {2, 4}, PruneAxis::kRows));
    MatrixF r_block = r;
    int64_t first = 0;
    for (int64_t p = 0; p < c.projections(); ++p) {
      const int64_t rows = c.projection_rows.empty() ? c.d_out : c.projection_rows[static_cast<size_t>(p)];
      for (int64_t i = 0; i < r.rows; ++i)
        for (int64_t j = first; j < first + rows; ++j)
          if (i / c.rank != p) r_block(i, j) = 0.0f;
      first += rows;
    }
    const MatrixF adapter = matmul_nn(matmul_nn(x, l_pruned), r_block);
    for (int64_t i = 0; i < y.size(); ++i) y.data[i] += adapter.data[i];
  }
  if (c.relu)
    for (auto& v : y.data) v = v > 0 ? v : 0;
  return y;
}

// Every form, with a feature-major output, and with a token-major one in buffers wider than
// the layer reads and writes (16 more features per token: junk in X, poison in Y).
TEST_P(InferenceLinear, EveryFormMatchesTheCpuReference) {
  const Case c = GetParam();
  const MatrixF x = random_matrix(c.t, c.d_in, 1, c.dtype), w = random_matrix(c.d_out, c.d_in, 2, c.dtype);
  const int64_t adapters = std::max<int64_t>(c.rank, 1) * c.projections();
  const MatrixF l = random_matrix(c.d_in, adapters, 3, c.dtype, 0.5f);
  const MatrixF r = random_matrix(adapters, c.d_out, 4, c.dtype, 0.5f);
  const MatrixF b = random_matrix(1, c.d_out, 5, c.dtype);
  const MatrixF want = reference(c, x, w, l, r, b.data);
  const bool token_major = c.input == gpu::InputLayout::kTokenMajor;
  gpu::DeviceBuffer dw = gpu::upload(w, c.dtype, stream_), dl = gpu::upload(l, c.dtype, stream_);
  gpu::DeviceBuffer dr = gpu::upload(r, c.dtype, stream_), db = gpu::upload(b, c.dtype, stream_);
  gpu::SparseEngine engine(nullptr);
  gpu::DenseGemmCache dense(false);
  for (gpu::OutputLayout output : {gpu::OutputLayout::kFeatureMajor, gpu::OutputLayout::kTokenMajor})
    for (gpu::AdapterForm form : {gpu::AdapterForm::kMerged, gpu::AdapterForm::kPreAdd, gpu::AdapterForm::kFolded}) {
      const bool token_major_out = output == gpu::OutputLayout::kTokenMajor;
      SCOPED_TRACE(std::string(gpu::to_string(form)) + (token_major_out ? ", token-major Y" : ", Y^T"));
      gpu::InferenceLinearSpec spec{c.d_out, c.d_in, c.rank, c.t, c.dtype, c.input, c.bias, c.relu, form, output};
      spec.projection_rows = c.projection_rows;
      const int64_t padded = gpu::padded_rank(c.rank);
      // The folded extension: T spread to the even columns, or P projections' T interleaved.
      const int64_t width = c.d_in + (form == gpu::AdapterForm::kFolded ? std::max<int64_t>(c.projections(), 2) * padded : 0);
      if (token_major_out) {
        spec.input_ld = token_major ? width + 16 : 0;
        spec.output_ld = c.d_out + (form == gpu::AdapterForm::kMerged ? c.projections() * padded : 0) + 16;
      }
      // The layer's shapes, listed beforehand: every search it runs takes a selection made for
      // it on a host thread (token-major outputs; the others' selections are cheap).
      const size_t events_before = engine.events().size();
      engine.prepare_selections(gpu::inference_linear_shapes(engine, spec));
      gpu::SparseInferenceLinear layer(engine, dense, spec, stream_);
      // (A biased shape searched on its own, where its epilogue refused the pick of the shape
      // without bias, has no prepared selection: SparseEngine::biased_selection.)
      for (size_t e = events_before; e < engine.events().size(); ++e) {
        if (engine.events()[e].key.find("|bias") != std::string::npos) continue;
        EXPECT_EQ(engine.events()[e].selection_prepared, token_major_out && engine.events()[e].searched)
            << engine.events()[e].key;
      }
      EXPECT_EQ(layer.rank(), padded);
      EXPECT_EQ(layer.projections(), c.projections());
      EXPECT_EQ(layer.input_width(), width);
      const MatrixF x_in = widened(x, token_major ? layer.input_ld() : width, c.dtype);
      gpu::DeviceBuffer dx = gpu::upload(token_major ? x_in : transpose(x_in), c.dtype, stream_);
      layer.set_weights(dw.get(), dl.get(), dr.get(), db.get(), stream_);
      const int64_t y_elems = token_major_out ? c.t * layer.output_ld() : layer.output_rows() * c.t;
      gpu::DeviceBuffer y(y_elems * 2);
      gpu::poison(y.get(), y_elems, stream_);
      layer.forward(dx.get(), y.get(), stream_);
      if (token_major_out)
        expect_close(first_columns(gpu::download(y.get(), c.t, layer.output_ld(), c.dtype, stream_), c.d_out), want,
                     c.dtype, 3.0);
      else
        expect_close(gpu::download(y.get(), c.d_out, c.t, c.dtype, stream_), transpose(want), c.dtype, 3.0);
    }
}

class InferenceLinearTokenMajor : public GpuTest {};

TEST_F(InferenceLinearTokenMajor, WithoutAnAdapterMatchesTheCpuReference) {
  for (DType d : {DType::kF16, DType::kBF16})
    for (gpu::InputLayout input : {gpu::InputLayout::kTokenMajor, gpu::InputLayout::kFeatureMajor}) {
      const Case c{d, 48, 80, 112, 0, input, true, true};
      SCOPED_TRACE(std::string(to_string(d)) + (input == gpu::InputLayout::kTokenMajor ? " tok" : " feat"));
      const MatrixF x = random_matrix(c.t, c.d_in, 11, d), w = random_matrix(c.d_out, c.d_in, 12, d);
      const MatrixF b = random_matrix(1, c.d_out, 13, d);
      gpu::DeviceBuffer dw = gpu::upload(w, d, stream_), db = gpu::upload(b, d, stream_);
      gpu::DeviceBuffer dx = gpu::upload(input == gpu::InputLayout::kTokenMajor ? x : transpose(x), d, stream_);
      gpu::SparseEngine engine(nullptr);
      gpu::DenseGemmCache dense(false);
      gpu::InferenceLinearSpec spec{c.d_out, c.d_in, 0, c.t, d, input, true, true, gpu::AdapterForm::kMerged,
                                    gpu::OutputLayout::kTokenMajor};
      gpu::SparseInferenceLinear layer(engine, dense, spec, stream_);
      layer.set_weights(dw.get(), nullptr, nullptr, db.get(), stream_);
      gpu::DeviceBuffer y(c.t * c.d_out * 2);
      gpu::poison(y.get(), c.t * c.d_out, stream_);
      layer.forward(dx.get(), y.get(), stream_);
      const MatrixF no_adapter(1, 1);
      expect_close(gpu::download(y.get(), c.t, c.d_out, d, stream_),
                   reference(c, x, w, no_adapter, no_adapter, b.data), d, 3.0);
    }
}

TEST_F(InferenceLinearTokenMajor, RowStridesTheLayerCannotUseAreRefused) {
  gpu::SparseEngine engine(nullptr);
  gpu::DenseGemmCache dense(false);
  gpu::InferenceLinearSpec spec{80, 112, 16, 48, DType::kF16, gpu::InputLayout::kTokenMajor, false, false,
                                gpu::AdapterForm::kFolded, gpu::OutputLayout::kTokenMajor};
  spec.input_ld = 112;  // narrower than X with the folded form's 32 adapter features
  EXPECT_THROW(gpu::SparseInferenceLinear(engine, dense, spec, stream_), Error);
  spec.input_ld = 0;
  spec.form = gpu::AdapterForm::kMerged;
  spec.output_ld = 80;  // narrower than Y with the merged form's 16 (X L) columns
  EXPECT_THROW(gpu::SparseInferenceLinear(engine, dense, spec, stream_), Error);
  spec.output_ld = 128;
  spec.output = gpu::OutputLayout::kFeatureMajor;  // Y^T has no row stride to set
  EXPECT_THROW(gpu::SparseInferenceLinear(engine, dense, spec, stream_), Error);
}

TEST_F(InferenceLinearTokenMajor, FusedProjectionsMustCoverTheOutputRows) {
  gpu::SparseEngine engine(nullptr);
  gpu::DenseGemmCache dense(false);
  gpu::InferenceLinearSpec spec{96, 80, 8, 48, DType::kF16, gpu::InputLayout::kTokenMajor, false, false,
                                gpu::AdapterForm::kFolded, gpu::OutputLayout::kTokenMajor};
  spec.projection_rows = {48, 16, 16};  // 80 rows of 96
  EXPECT_THROW(gpu::SparseInferenceLinear(engine, dense, spec, stream_), Error);
  spec.projection_rows = {48, 0, 48};
  EXPECT_THROW(gpu::SparseInferenceLinear(engine, dense, spec, stream_), Error);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, InferenceLinear,
    ::testing::Values(Case{DType::kF16, 48, 80, 112, 7, gpu::InputLayout::kTokenMajor, true, true},
                      Case{DType::kF16, 64, 208, 96, 32, gpu::InputLayout::kTokenMajor, false, false},
                      Case{DType::kF16, 48, 80, 112, 0, gpu::InputLayout::kTokenMajor, true, true},
                      Case{DType::kBF16, 32, 208, 96, 20, gpu::InputLayout::kFeatureMajor, true, false},
                      Case{DType::kF16, 96, 64, 320, 16, gpu::InputLayout::kFeatureMajor, false, true},
                      // An odd rank past 128, feature-major.
                      Case{DType::kF16, 48, 80, 160, 136, gpu::InputLayout::kFeatureMajor, true, true},
                      // Fused projections of unequal rows (q, k, v of grouped-query attention;
                      // gate and up), each with its own adapter.
                      Case{DType::kF16, 48, 96, 80, 5, gpu::InputLayout::kTokenMajor, true, true, {48, 16, 32}},
                      Case{DType::kBF16, 64, 112, 144, 20, gpu::InputLayout::kFeatureMajor, false, true, {64, 48}},
                      Case{DType::kF16, 32, 96, 112, 16, gpu::InputLayout::kFeatureMajor, true, false, {32, 32, 32}},
                      Case{DType::kF16, 48, 80, 96, 3, gpu::InputLayout::kTokenMajor, false, false, {16, 16, 32, 16}}),
    [](const auto& info) {
      const Case& c = info.param;
      return std::string(to_string(c.dtype)) + "_" + std::to_string(c.d_out) + "x" + std::to_string(c.d_in) +
             "_r" + std::to_string(c.rank) + (c.input == gpu::InputLayout::kTokenMajor ? "_tok" : "_feat") +
             (c.bias ? "_bias" : "") + (c.relu ? "_relu" : "") +
             (c.projection_rows.empty() ? "" : "_p" + std::to_string(c.projections()));
    });

}  // namespace
}  // namespace slope::testing
