#include <filesystem>
#include <fstream>

#include "gpu_test.hpp"
#include "slope/core/nm_prune.hpp"
#include "slope/core/random.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/sparse_linear.hpp"

namespace slope::testing {
namespace {

class TuningCacheGpu : public GpuTest {
 protected:
  void SetUp() override {
    GpuTest::SetUp();
    if (IsSkipped()) return;
    path_ = (std::filesystem::temp_directory_path() / ("slope_tuning_gpu_" + std::to_string(::getpid())) / "t.json").string();
    std::filesystem::remove_all(std::filesystem::path(path_).parent_path());
  }
  void TearDown() override {
    if (!path_.empty()) std::filesystem::remove_all(std::filesystem::path(path_).parent_path());
    GpuTest::TearDown();
  }
  // Runs one product through a fresh engine on the cache file; returns the output.
  MatrixF run_once(bool* searched, bool* from_cache, std::vector<std::string>* warnings = nullptr) {
    TuningCache cache(path_);
    if (warnings) *warnings = cache.warnings();
    gpu::SparseEngine engine(&cache);
    const int64_t t = 64, m = 128, k = 96;
    gpu::SparseLinear layer(engine, m, k, t, DType::kF16, gpu::Tiling::kNone, stream_);
    const MatrixF x = random_matrix(t, k, 1, DType::kF16);
    const MatrixF w = prune(random_matrix(m, k, 2, DType::kF16), {2, 4}, PruneAxis::kRows);
    gpu::DeviceBuffer dw = gpu::upload(w, DType::kF16, stream_), dx = gpu::upload(x, DType::kF16, stream_), y(t * m * 2);
    layer.set_weight(dw.get(), stream_);
    layer.forward(dx.get(), y.get(), stream_);
    EXPECT_EQ(engine.events().size(), 1u);
    *searched = engine.events().at(0).searched;
    *from_cache = engine.events().at(0).from_cache;
    const MatrixF got = gpu::download(y.get(), m, t, DType::kF16, stream_);
    expect_close(got, transpose(matmul_nt(x, w)), DType::kF16);
    return got;
  }
  std::string path_;
};

TEST_F(TuningCacheGpu, SecondRunReusesTheSearchWithoutSearching) {
  bool searched = false, cached = false;
  const MatrixF first = run_once(&searched, &cached);
  EXPECT_TRUE(searched);
  EXPECT_FALSE(cached);
  ASSERT_TRUE(std::filesystem::exists(path_));
  const MatrixF second = run_once(&searched, &cached);
  EXPECT_FALSE(searched);
  EXPECT_TRUE(cached);
  expect_close(second, first, DType::kF16);
  // The entry on disk is what the search chose.
  TuningCache cache(path_);
  EXPECT_EQ(cache.size(), 1u);
}

TEST_F(TuningCacheGpu, CorruptCacheIsRebuiltWithAWarning) {
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  std::ofstream(path_) << "{\"format\": \"slope-tuning-cache\", \"version\": 1, \"entries\": [tru";
  bool searched = false, cached = false;
  std::vector<std::string> warnings;
  run_once(&searched, &cached, &warnings);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(searched);
  run_once(&searched, &cached, &warnings);
  EXPECT_TRUE(warnings.empty());
  EXPECT_TRUE(cached);
}

}  // namespace
}  // namespace slope::testing
