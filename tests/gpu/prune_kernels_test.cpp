#include "gpu_test.hpp"
#include "slope/core/nm_prune.hpp"
#include "slope/core/random.hpp"
#include "slope/gpu/kernels.hpp"

namespace slope::testing {
namespace {

class PruneKernels : public GpuTest, public ::testing::WithParamInterface<DType> {};

// A matrix with deliberate ties (few distinct magnitudes) as well as random values.
MatrixF tie_heavy(int64_t rows, int64_t cols, uint64_t seed, DType d) {
  MatrixF m = random_matrix(rows, cols, seed, d);
  for (int64_t i = 0; i < m.size(); i += 3) m.data[i] = round_to(d, (i % 7 < 3 ? 0.5f : -0.5f));
  for (int64_t i = 1; i < m.size(); i += 11) m.data[i] = 0.0f;
  return m;
}

TEST_P(PruneKernels, RowPruningMatchesTheCpuBitForBit) {
  const DType d = GetParam();
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{48, 80}, {3, 8}, {208, 336}}) {
    const MatrixF w = tie_heavy(rows, cols, 17 + rows, d);
    gpu::DeviceBuffer in = gpu::upload(w, d, stream_), out(rows * cols * 2), idx(rows * cols / 8);
    gpu::poison(out.get(), rows * cols, stream_);
    gpu::prune_rows_2to4(in.get(), out.get(), idx.as<uint8_t>(), rows, cols, d, stream_);
    const MatrixF got = gpu::download(out.get(), rows, cols, d, stream_);
    const Mask mask = nm_mask(w, {2, 4}, PruneAxis::kRows);
    EXPECT_EQ(got.data, apply_mask(w, mask).data);
    // Indices: two 2-bit positions per group, low nibble = first group of the byte.
    const auto bytes = gpu::download_bytes(idx.get(), rows * cols / 8, stream_);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < cols / 4; ++g) {
        const uint8_t nibble = (bytes[(r * cols / 4 + g) / 2] >> (((r * cols / 4 + g) % 2) * 4)) & 0xF;
        const int first = nibble & 3, second = nibble >> 2;
        EXPECT_LT(first, second);
        EXPECT_TRUE(mask(r, g * 4 + first) && mask(r, g * 4 + second)) << "row " << r << " group " << g;
      }
  }
}

TEST_P(PruneKernels, InPlacePruning) {
  const DType d = GetParam();
  const MatrixF w = random_matrix(32, 64, 5, d);
  gpu::DeviceBuffer buf = gpu::upload(w, d, stream_);
  gpu::prune_rows_2to4(buf.get(), buf.get(), nullptr, 32, 64, d, stream_);
  EXPECT_EQ(gpu::download(buf.get(), 32, 64, d, stream_).data, prune(w, {2, 4}, PruneAxis::kRows).data);
}

TEST_P(PruneKernels, DoublePruneTransposeMatchesTheCpu) {
  const DType d = GetParam();
  // Shapes that are not multiples of the kernel's 64 x 64 tile.
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{80, 48}, {144, 208}, {64, 64}, {4, 8}}) {
    const MatrixF w = tie_heavy(rows, cols, 3 + cols, d);
    const DoublePruned ref = double_prune(w, {2, 4});
    gpu::DeviceBuffer wr = gpu::upload(ref.w_r, d, stream_), t(rows * cols * 2);
    gpu::poison(t.get(), rows * cols, stream_);
    gpu::double_prune_transpose(wr.get(), t.get(), rows, cols, d, stream_);
    const MatrixF got = gpu::download(t.get(), cols, rows, d, stream_);
    EXPECT_EQ(got.data, transpose(ref.w_rc).data) << rows << "x" << cols;
    EXPECT_TRUE(is_nm_sparse(got, {2, 4}, PruneAxis::kRows));
  }
}

TEST_P(PruneKernels, RejectsBadShapes) {
  const DType d = GetParam();
  gpu::DeviceBuffer buf(1024);
  EXPECT_THROW(gpu::prune_rows_2to4(buf.get(), buf.get(), nullptr, 4, 12, d, stream_), Error);
  EXPECT_THROW(gpu::double_prune_transpose(buf.get(), buf.get(), 8, 8, d, stream_), Error);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, PruneKernels, ::testing::Values(DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace slope::testing
