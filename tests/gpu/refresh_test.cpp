#include <algorithm>
#include <cmath>

#include "gpu_test.hpp"
#include "slope/core/compressed.hpp"
#include "slope/core/random.hpp"
#include "slope/core/slope_reference.hpp"
#include "slope/core/sparselt_metadata.hpp"
#include "slope/gpu/compressed_layout.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/refresh_kernels.hpp"
#include "slope/gpu/slope_linear.hpp"

namespace slope::testing {
namespace {

// The column-mask flags the GPU should hold: mask_rc at W's kept positions, in kept order.
std::vector<uint8_t> expected_flags(const DoublePruned& p) {
  std::vector<uint8_t> flags(static_cast<size_t>(p.w_r.size() / 16), 0);
  int64_t q = 0;
  for (int64_t i = 0; i < p.w_r.size(); ++i) {
    if (!p.mask_r.data[static_cast<size_t>(i)]) continue;
    if (p.mask_rc.data[static_cast<size_t>(i)]) flags[static_cast<size_t>(q / 8)] |= static_cast<uint8_t>(1u << (q % 8));
    ++q;
  }
  return flags;
}

// T's kept slots per group (flagged, then the lowest-index others, ascending) and values.
struct TransposeSlots {
  MatrixF values;  // d_in x d_out / 2
  MatrixF probe;   // dense d_in x d_out, ones on the slots
};
TransposeSlots expected_transpose(const DoublePruned& p) {
  const int64_t rows = p.w_r.rows, cols = p.w_r.cols;
  TransposeSlots out{MatrixF(cols, rows / 2), MatrixF(cols, rows)};
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t g = 0; g < rows / 4; ++g) {
      std::vector<int> slots;
      for (int s = 0; s < 4; ++s)
        if (p.mask_rc(4 * g + s, j) && slots.size() < 2) slots.push_back(s);
      for (int s = 0; s < 4 && slots.size() < 2; ++s)
        if (!p.mask_rc(4 * g + s, j)) slots.push_back(s);
      std::sort(slots.begin(), slots.end());
      for (int k = 0; k < 2; ++k) {
        out.values(j, 2 * g + k) = p.w_rc(4 * g + slots[static_cast<size_t>(k)], j);
        out.probe(j, 4 * g + slots[static_cast<size_t>(k)]) = 1.0f;
      }
    }
  return out;
}

class RefreshKernels : public GpuTest, public ::testing::WithParamInterface<DType> {};

TEST_P(RefreshKernels, FlagsTransposeAndPartsMatchTheCpu) {
  const DType dtype = GetParam();
  const int64_t rows = 48, cols = 208;  // several tiles, ragged in both directions
  const MatrixF w = random_matrix(rows, cols, 21, dtype);
  const DoublePruned p = double_prune(w, {2, 4});
  gpu::DeviceBuffer dw = gpu::upload(w, dtype, stream_), w_r(rows * cols * 2), idx(rows * cols / 8);
  gpu::DeviceBuffer kept(rows * cols), flags(rows * cols / 16), dense(rows * cols * 2);
  gpu::prune_rows_2to4(dw.get(), w_r.get(), idx.as<uint8_t>(), rows, cols, dtype, stream_);
  gpu::gather_kept_2to4(w_r.get(), idx.as<uint8_t>(), kept.get(), rows, cols, false, dtype, stream_);
  gpu::column_mask_flags(kept.get(), idx.as<uint8_t>(), flags.as<uint8_t>(), rows, cols, dtype, stream_);
  EXPECT_EQ(gpu::download_bytes(flags.get(), rows * cols / 16, stream_), expected_flags(p));

  gpu::scatter_kept_2to4(kept.get(), idx.as<uint8_t>(), dense.get(), rows, cols, dtype, stream_);
  EXPECT_EQ(gpu::download(dense.get(), rows, cols, dtype, stream_).data, p.w_r.data);

  const TransposeSlots want = expected_transpose(p);
  gpu::transpose_from_kept(kept.get(), idx.as<uint8_t>(), flags.as<uint8_t>(), dense.get(), rows, cols, dtype, stream_);
  EXPECT_EQ(gpu::download(dense.get(), cols, rows, dtype, stream_).data, transpose(p.w_rc).data);
  gpu::transpose_from_kept(nullptr, idx.as<uint8_t>(), flags.as<uint8_t>(), dense.get(), rows, cols, dtype, stream_);
  EXPECT_EQ(gpu::download(dense.get(), cols, rows, dtype, stream_).data, want.probe.data);

  // T's values into four parts of 52 rows each, as a tiled T holds them.
  gpu::TransposeParts parts;
  parts.count = 4;
  parts.rows_per_part = cols / 4;
  std::vector<gpu::DeviceBuffer> bufs;
  for (int i = 0; i < parts.count; ++i) {
    bufs.emplace_back(parts.rows_per_part * rows / 2 * 2);
    gpu::poison(bufs.back().get(), parts.rows_per_part * rows / 2, stream_);
    parts.values[i] = bufs.back().get();
  }
  gpu::refresh_transpose_values(kept.get(), idx.as<uint8_t>(), flags.as<uint8_t>(), parts, rows, cols, dtype, stream_);
  for (int i = 0; i < parts.count; ++i) {
    const MatrixF got = gpu::download(bufs[static_cast<size_t>(i)].get(), parts.rows_per_part, rows / 2, dtype, stream_);
    for (int64_t r = 0; r < parts.rows_per_part; ++r)
      for (int64_t c = 0; c < rows / 2; ++c)
        ASSERT_EQ(got(r, c), want.values(i * parts.rows_per_part + r, c)) << "part " << i << " row " << r << " col " << c;
  }
}

TEST_P(RefreshKernels, CuSparseLtBufferStartsWithTheKeptValues) {
  gpu::SparseLtContext ctx;
  for (auto [m, k] : {std::pair<int64_t, int64_t>{64, 128}, {80, 112}, {256, 64}, {1024, 1024}})
    EXPECT_TRUE(gpu::compressed_values_lead(ctx, m, k, GetParam(), stream_)) << m << " x " << k;
}

// W's positions read back from cuSPARSELt's metadata: by the CPU reference decoder
// (core/sparselt_metadata.hpp) against the positions the pruning chose, and by every kernel
// that reads them in place against the same kernel on the pruning's own positions; shapes off
// whole metadata tiles (64 x 32) included.
TEST_P(RefreshKernels, CuSparseLtMetadataHoldsThePositions) {
  const DType dtype = GetParam();
  gpu::SparseLtContext ctx;
  for (auto [m, k] : {std::pair<int64_t, int64_t>{64, 128}, {80, 112}, {80, 208}, {48, 1024}, {1024, 48}, {256, 64}}) {
    SCOPED_TRACE(std::to_string(m) + " x " + std::to_string(k));
    EXPECT_TRUE(gpu::compressed_layout_facts(ctx, m, k, dtype, stream_).metadata_holds_positions);
    const int64_t n = m * k;
    gpu::DeviceBuffer w = gpu::upload(random_matrix(m, k, 50 + m, dtype), dtype, stream_);
    gpu::DeviceBuffer pruned_idx(n / 8);
    gpu::prune_rows_2to4(w.get(), w.get(), pruned_idx.as<uint8_t>(), m, k, dtype, stream_);
    gpu::CompressedWeight c(ctx, m, k, dtype);
    c.compress(w.get(), stream_);
    const std::vector<uint8_t> want = gpu::download_bytes(pruned_idx.get(), n / 8, stream_);
    const std::vector<uint8_t> buffer = gpu::download_bytes(c.data(), c.bytes(), stream_);
    ASSERT_GE(static_cast<int64_t>(buffer.size()), sparselt_metadata_offset(m, k, 2) + sparselt_metadata_bytes(m, k));
    EXPECT_EQ(positions_from_sparselt_metadata(buffer.data() + sparselt_metadata_offset(m, k, 2), m, k), want);
    // The kernels read the metadata in place: the same kept gradient and the same dense W as
    // from the pruning's own positions.
    const gpu::Positions2to4 own = pruned_idx.as<uint8_t>(), in_metadata = gpu::Positions2to4::in_compressed(c.data(), m, k);
    gpu::DeviceBuffer grad = gpu::upload(random_matrix(m, k, 60 + k, dtype), dtype, stream_);
    gpu::DeviceBuffer kept_own(n), kept_meta(n), dense_own(n * 2), dense_meta(n * 2);
    gpu::gather_kept_2to4(grad.get(), own, kept_own.get(), m, k, false, dtype, stream_);
    gpu::gather_kept_2to4(grad.get(), in_metadata, kept_meta.get(), m, k, false, dtype, stream_);
    EXPECT_EQ(gpu::download_bytes(kept_meta.get(), n, stream_), gpu::download_bytes(kept_own.get(), n, stream_));
    gpu::scatter_kept_2to4(kept_own.get(), own, dense_own.get(), m, k, dtype, stream_);
    gpu::scatter_kept_2to4(kept_own.get(), in_metadata, dense_meta.get(), m, k, dtype, stream_);
    EXPECT_EQ(gpu::download_bytes(dense_meta.get(), n * 2, stream_), gpu::download_bytes(dense_own.get(), n * 2, stream_));
    // The refresh kernels, which read a 64 x 64 tile's position bytes at once (80 x 208's last
    // column block covers one metadata tile, 48 x 1024's rows lie inside one padded tile).
    gpu::DeviceBuffer flags_own(n / 16), flags_meta(n / 16), t_own(n / 2 * 2), t_meta(n / 2 * 2);
    gpu::column_mask_flags(kept_own.get(), own, flags_own.as<uint8_t>(), m, k, dtype, stream_);
    gpu::column_mask_flags(kept_own.get(), in_metadata, flags_meta.as<uint8_t>(), m, k, dtype, stream_);
    const std::vector<uint8_t> flags = gpu::download_bytes(flags_own.get(), n / 16, stream_);
    EXPECT_EQ(gpu::download_bytes(flags_meta.get(), n / 16, stream_), flags);
    EXPECT_NE(std::count(flags.begin(), flags.end(), uint8_t{0}), static_cast<std::ptrdiff_t>(flags.size()));
    gpu::transpose_from_kept(kept_own.get(), own, flags_own.as<uint8_t>(), dense_own.get(), m, k, dtype, stream_);
    gpu::transpose_from_kept(kept_own.get(), in_metadata, flags_own.as<uint8_t>(), dense_meta.get(), m, k, dtype,
                             stream_);
    EXPECT_EQ(gpu::download_bytes(dense_meta.get(), n * 2, stream_), gpu::download_bytes(dense_own.get(), n * 2, stream_));
    gpu::TransposeParts whole;
    whole.count = 1;
    whole.rows_per_part = k;
    gpu::poison(t_own.get(), n / 2, stream_);
    gpu::poison(t_meta.get(), n / 2, stream_);
    whole.values[0] = t_own.get();
    gpu::refresh_transpose_values(kept_own.get(), own, flags_own.as<uint8_t>(), whole, m, k, dtype, stream_);
    whole.values[0] = t_meta.get();
    gpu::refresh_transpose_values(kept_own.get(), in_metadata, flags_own.as<uint8_t>(), whole, m, k, dtype, stream_);
    EXPECT_EQ(gpu::download_bytes(t_meta.get(), n, stream_), gpu::download_bytes(t_own.get(), n, stream_));
  }
}

TEST_P(RefreshKernels, NonzeroFillHasNoZerosAndBothSigns) {
  // The layout check relies on it: a zero among the kept values would let cuSPARSELt move it.
  const DType dtype = GetParam();
  const int64_t n = 100003;  // odd, several blocks
  gpu::DeviceBuffer buf(n * 2);
  gpu::fill_nonzero(buf.get(), n, 9, dtype, stream_);
  const MatrixF v = gpu::download(buf.get(), 1, n, dtype, stream_);
  int64_t negative = 0;
  for (float x : v.data) {
    ASSERT_GE(std::fabs(x), 1.0f);
    ASSERT_LE(std::fabs(x), 2.0f);
    negative += x < 0;
  }
  EXPECT_GT(negative, n / 3);
  EXPECT_LT(negative, 2 * n / 3);
}

INSTANTIATE_TEST_SUITE_P(Types, RefreshKernels, ::testing::Values(DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(to_string(info.param)); });

struct Shape {
  int64_t d_out, d_in, t;
};
class LayerRefresh : public GpuTest, public ::testing::WithParamInterface<Shape> {};

// After new kept values: forward and input gradient follow the CPU reference, through the
// in-place refresh, a mask change and the recompress baseline.
TEST_P(LayerRefresh, InPlaceRefreshAndMaskChangeMatchTheCpu) {
  const Shape s = GetParam();
  const DType dtype = DType::kF16;
  const MatrixF w = random_matrix(s.d_out, s.d_in, 31, dtype);
  SlopeLayerReference ref(w, {});
  gpu::SparseEngine engine(nullptr);
  gpu::DenseGemmCache dense(false);
  gpu::TrainingWorkspace ws(engine, dense);
  gpu::SlopeLinear layer(ws, {s.d_out, s.d_in, s.t, dtype, gpu::InputLayout::kTokenMajor, false, false}, stream_);
  gpu::DeviceBuffer dw = gpu::upload(w, dtype, stream_);
  layer.init_weights(dw.get(), nullptr, stream_);
  ASSERT_TRUE(layer.values_in_place());
  // No copy of W's positions: every use below (refresh, mask change, the baseline) reads them
  // in W's metadata, kept values that turn exactly zero included.
  EXPECT_TRUE(layer.positions_in_metadata());
  EXPECT_EQ(gpu::download_bytes(layer.column_flags(), s.d_out * s.d_in / 16, stream_), expected_flags(ref.weights()));

  const MatrixF x = random_matrix(s.t, s.d_in, 32, dtype), dy = random_matrix(s.t, s.d_out, 33, dtype);
  gpu::DeviceBuffer gx = gpu::upload(x, dtype, stream_), gdy = gpu::upload(transpose(dy), dtype, stream_);
  gpu::DeviceBuffer y(s.d_out * s.t * 2), dx(s.d_in * s.t * 2);
  auto check = [&](const std::string& when) {
    SCOPED_TRACE(when);
    layer.forward(gx.get(), y.get(), stream_);
    layer.grad_input(gdy.get(), dx.get(), stream_);
    expect_close(gpu::download(y.get(), s.d_out, s.t, dtype, stream_), transpose(ref.forward(x)), dtype);
    expect_close(gpu::download(dx.get(), s.d_in, s.t, dtype, stream_), transpose(linear_grad_input(dy, ref.weights().w_rc)),
                 dtype);
  };
  check("initial");
  for (int round = 0; round < 2; ++round) {
    // New values (as an optimizer step would write them), some exactly zero.
    gpu::fill_uniform(layer.kept_values(), s.d_out * s.d_in / 2, 40 + round, 1.0f, dtype, stream_);
    SLOPE_CHECK(cudaMemsetAsync(layer.kept_values(), 0, 64, stream_));
    const MatrixF kept = gpu::download(layer.kept_values(), 1, s.d_out * s.d_in / 2, dtype, stream_);
    ref.set_kept_values(kept.data);
    layer.refresh(stream_);
    check("refresh " + std::to_string(round));
    layer.refresh_by_recompress(stream_);  // the baseline must leave the layer as it was
    check("after the recompress baseline " + std::to_string(round));
    layer.change_column_mask(stream_);
    ref.change_column_mask();
    EXPECT_EQ(gpu::download_bytes(layer.column_flags(), s.d_out * s.d_in / 16, stream_), expected_flags(ref.weights()));
    check("mask change " + std::to_string(round));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, LayerRefresh,
                         ::testing::Values(Shape{80, 112, 48}, Shape{64, 256, 32}, Shape{256, 64, 32},
                                           Shape{512, 2048, 32}),
                         [](const auto& info) {
                           return std::to_string(info.param.d_out) + "x" + std::to_string(info.param.d_in);
                         });

}  // namespace
}  // namespace slope::testing
