#include <filesystem>
#include <fstream>

#include "gpu_test.hpp"
#include "slope/core/nm_prune.hpp"
#include "slope/core/random.hpp"
#include "slope/gpu/device_info.hpp"
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

// A layer built on a fresh engine over the cache file: its search is the engine's one event.
struct SearchedLayer {
  SearchedLayer(const std::string& path, int64_t m, int64_t k, int64_t t, cudaStream_t stream,
                gpu::OutputLayout output = gpu::OutputLayout::kTokenMajor)
      : cache(path),
        engine(&cache),
        layer(engine, m, k, t, DType::kF16, gpu::Tiling::kNone, stream, nullptr, gpu::InputLayout::kTokenMajor, false,
              output) {}
  const gpu::PlanEvent& event() const { return engine.events().at(0); }
  TuningCache cache;
  gpu::SparseEngine engine;
  gpu::SparseLinear layer;
};

// The layer's Y = X W^T on fresh random operands against the CPU reference, Y poisoned first.
void expect_token_major_product(gpu::SparseLinear& layer, int64_t t, int64_t m, int64_t k, uint64_t seed,
                                cudaStream_t stream) {
  const MatrixF x = random_matrix(t, k, seed, DType::kF16);
  const MatrixF w = prune(random_matrix(m, k, seed + 1, DType::kF16), {2, 4}, PruneAxis::kRows);
  gpu::DeviceBuffer dw = gpu::upload(w, DType::kF16, stream), dx = gpu::upload(x, DType::kF16, stream), y(t * m * 2);
  gpu::poison(y.get(), t * m, stream);
  layer.set_weight(dw.get(), stream);
  layer.forward(dx.get(), y.get(), stream);
  expect_close(gpu::download(y.get(), t, m, DType::kF16, stream), matmul_nt(x, w), DType::kF16);
}

// The same for a feature-major output, Y^T.
void expect_feature_major_product(gpu::SparseLinear& layer, int64_t t, int64_t m, int64_t k, uint64_t seed,
                                  cudaStream_t stream) {
  const MatrixF x = random_matrix(t, k, seed, DType::kF16);
  const MatrixF w = prune(random_matrix(m, k, seed + 1, DType::kF16), {2, 4}, PruneAxis::kRows);
  gpu::DeviceBuffer dw = gpu::upload(w, DType::kF16, stream), dx = gpu::upload(x, DType::kF16, stream), y(t * m * 2);
  gpu::poison(y.get(), t * m, stream);
  layer.set_weight(dw.get(), stream);
  layer.forward(dx.get(), y.get(), stream);
  expect_close(transpose(gpu::download(y.get(), m, t, DType::kF16, stream)), matmul_nt(x, w), DType::kF16);
}

// Rows that, at 1024 tokens (8 rows of 128 x 128 tiles), make one row of tiles more than a
// GPU of `sms` SMs has: a product of more than one wave.
int64_t rows_past_one_wave(int sms) { return 128 * (sms / 8 + 1); }

// Puts `planted` into `cache` as the configurations chosen for other shapes of `shape`'s kind
// (m = 512, 528, ...): the rivals a search of `shape` is re-timed against.
void plant_rivals(TuningCache& cache, const gpu::SparseEngine& keys, gpu::SparseShape shape,
                  const std::vector<int>& planted) {
  for (size_t i = 0; i < planted.size(); ++i) {
    shape.m = 512 + 16 * static_cast<int64_t>(i);
    TuningEntry e;
    e.config_id = planted[i];
    cache.put(keys.tuning_key(shape), e);
  }
}

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

// A configuration read from the cache that cuSPARSELt refuses (an id past its configurations,
// as a file edited by hand or written by another build could hold) is set aside like a corrupt
// file's entries: the shape is searched again, the product is right, the file gets the new
// choice, and a later run reads that without a search.
TEST_F(TuningCacheGpu, ACachedConfigurationCuSparseLtRefusesIsSearchedAgain) {
  const int64_t t = 64, m = 128, k = 96;
  for (const gpu::OutputLayout out : {gpu::OutputLayout::kFeatureMajor, gpu::OutputLayout::kTokenMajor}) {
    const bool token_major = out == gpu::OutputLayout::kTokenMajor;
    SCOPED_TRACE(token_major ? "token-major output" : "feature-major output");
    std::filesystem::remove_all(std::filesystem::path(path_).parent_path());
    const gpu::SparseShape shape{m, k, t, DType::kF16, false, gpu::InputLayout::kTokenMajor, false, out};
    for (int run = 0; run < 2; ++run) {
      SCOPED_TRACE(run == 0 ? "the refused entry" : "the next run");
      TuningCache cache(path_);
      gpu::SparseEngine engine(&cache);
      const std::string key = engine.tuning_key(shape);
      if (run == 0) {
        TuningEntry refused;
        refused.config_id = 4000;
        cache.put(key, refused);
        cache.save();
      }
      gpu::SparseLinear layer(engine, m, k, t, DType::kF16, gpu::Tiling::kNone, stream_, nullptr,
                              gpu::InputLayout::kTokenMajor, false, out);
      const MatrixF x = random_matrix(t, k, 5 + run, DType::kF16);
      const MatrixF w = prune(random_matrix(m, k, 7 + run, DType::kF16), {2, 4}, PruneAxis::kRows);
      gpu::DeviceBuffer dw = gpu::upload(w, DType::kF16, stream_), dx = gpu::upload(x, DType::kF16, stream_),
                        y(t * m * 2);
      gpu::poison(y.get(), t * m, stream_);
      layer.set_weight(dw.get(), stream_);
      layer.forward(dx.get(), y.get(), stream_);
      const MatrixF got = token_major ? gpu::download(y.get(), t, m, DType::kF16, stream_)
                                      : transpose(gpu::download(y.get(), m, t, DType::kF16, stream_));
      expect_close(got, matmul_nt(x, w), DType::kF16);
      const std::vector<gpu::PlanEvent>& events = engine.events();
      if (run == 0) {
        ASSERT_EQ(events.size(), 2u);
        EXPECT_TRUE(events[0].from_cache);
        EXPECT_FALSE(events[0].cache_entry_refused);
        ASSERT_TRUE(events[1].searched) << events[1].search_error;
        EXPECT_TRUE(events[1].cache_entry_refused);
        EXPECT_NE(events[1].entry.config_id, 4000);
        EXPECT_EQ(layer.part_config_id(0), events[1].entry.config_id);
        EXPECT_EQ(TuningCache(path_).find(key)->config_id, events[1].entry.config_id);
      } else {
        ASSERT_EQ(events.size(), 1u);
        EXPECT_TRUE(events[0].from_cache);
        EXPECT_FALSE(events[0].searched);
        EXPECT_EQ(layer.part_config_id(0), events[0].entry.config_id);
      }
    }
  }
}

// A token-major search's pick for a product of more than one wave of 128 x 128 output tiles
// is timed against the configurations chosen for other shapes of its kind (here planted in
// the cache: two real ones and one no shape can take), and the configuration kept is one of
// those candidates and computes the product.
TEST_F(TuningCacheGpu, TokenMajorSearchRetimesItsPickAgainstTheRivalsInTheCache) {
  const int sms = gpu::query_device_info().sm_count;
  ASSERT_GT(sms, 0);
  const int64_t t = 1024, k = 128, m = rows_past_one_wave(sms);
  ASSERT_GT(m / 128 * (t / 128), sms);
  const gpu::SparseShape shape{m, k, t, DType::kF16, false, gpu::InputLayout::kTokenMajor, false,
                               gpu::OutputLayout::kTokenMajor};
  {
    TuningCache cache(path_);
    gpu::SparseEngine keys(nullptr);
    plant_rivals(cache, keys, shape, {40, 42, 42, 4000});  // 42 twice: the most chosen rival
    gpu::SparseShape other = shape;
    other.output = gpu::OutputLayout::kFeatureMajor;  // another kind: not a rival
    TuningEntry foreign;
    foreign.config_id = 7;
    cache.put(keys.tuning_key(other), foreign);
    cache.save();
  }
  SearchedLayer s(path_, m, k, t, stream_);
  ASSERT_EQ(s.engine.events().size(), 1u);
  const gpu::PlanEvent& e = s.event();
  ASSERT_TRUE(e.searched) << e.search_error;
  // The pick, and the real rivals it is not: configuration 4000 gets no selection.
  const int rivals = (e.search_pick != 40) + (e.search_pick != 42);
  EXPECT_EQ(e.retimed, 1 + rivals);
  const int kept = e.entry.config_id;
  EXPECT_TRUE(kept == e.search_pick || kept == 40 || kept == 42) << kept;
  EXPECT_EQ(TuningCache(path_).find(s.engine.tuning_key(shape))->config_id, kept);
  EXPECT_EQ(s.layer.part_config_id(0), kept);  // what the layer runs, as results report it
  expect_token_major_product(s.layer, t, m, k, 3, stream_);
}

// A feature-major output's scan pick for a product of more than one wave is re-timed the same
// way, against the configurations chosen for other feature-major shapes (planted: two real
// ones and one no shape can take), and the configuration kept computes the product.
TEST_F(TuningCacheGpu, FeatureMajorScanRetimesItsPickAgainstTheRivalsInTheCache) {
  const int sms = gpu::query_device_info().sm_count;
  ASSERT_GT(sms, 0);
  const int64_t t = 1024, k = 256, m = rows_past_one_wave(sms);
  ASSERT_GT(m / 128 * (t / 128), sms);
  const gpu::SparseShape shape{m, k, t, DType::kF16, false, gpu::InputLayout::kTokenMajor, false,
                               gpu::OutputLayout::kFeatureMajor};
  {
    TuningCache cache(path_);
    gpu::SparseEngine keys(nullptr);
    plant_rivals(cache, keys, shape, {7, 25, 25, 4000});  // 25 twice: the most chosen rival
    cache.save();
  }
  SearchedLayer s(path_, m, k, t, stream_, gpu::OutputLayout::kFeatureMajor);
  ASSERT_EQ(s.engine.events().size(), 1u);
  const gpu::PlanEvent& e = s.event();
  ASSERT_TRUE(e.searched) << e.search_error;
  // The pick and at least one real rival; never configuration 4000, which gets no selection.
  const int rivals = (e.search_pick != 7) + (e.search_pick != 25);
  EXPECT_GE(e.retimed, 2);
  EXPECT_LE(e.retimed, 1 + rivals);
  const int kept = e.entry.config_id;
  EXPECT_TRUE(kept == e.search_pick || kept == 7 || kept == 25) << kept;
  EXPECT_EQ(TuningCache(path_).find(s.engine.tuning_key(shape))->config_id, kept);
  EXPECT_EQ(s.layer.part_config_id(0), kept);
  expect_feature_major_product(s.layer, t, m, k, 9, stream_);
}

// The margin a rival must win the re-timing's rounds by (no GPU needed).
TEST(RetimingMargin, FeatureMajorRivalsMustWinByThreePercentTokenMajorByOne) {
  EXPECT_TRUE(gpu::rival_replaces_pick(gpu::OutputLayout::kTokenMajor, 1.0, 0.985));
  EXPECT_FALSE(gpu::rival_replaces_pick(gpu::OutputLayout::kTokenMajor, 1.0, 0.995));
  EXPECT_FALSE(gpu::rival_replaces_pick(gpu::OutputLayout::kFeatureMajor, 1.0, 0.985));
  EXPECT_TRUE(gpu::rival_replaces_pick(gpu::OutputLayout::kFeatureMajor, 1.0, 0.96));
  EXPECT_FALSE(gpu::rival_replaces_pick(gpu::OutputLayout::kFeatureMajor, 1.0, 1.01));
}

// A product of at most one wave of output tiles is timed against every configuration, also
// as the first shape of an empty cache, where no other shape offers a rival; the one kept
// computes the product.
TEST_F(TuningCacheGpu, OneWaveTokenMajorSearchRetimesItsPickAgainstEveryConfiguration) {
  const int64_t t = 256, m = 272, k = 208;  // 3 x 2 tiles, the last row of tiles partial
  SearchedLayer s(path_, m, k, t, stream_);
  ASSERT_EQ(s.engine.events().size(), 1u);
  const gpu::PlanEvent& e = s.event();
  ASSERT_TRUE(e.searched) << e.search_error;
  EXPECT_GT(e.retimed, 4);  // more candidates than the pick and three voted rivals
  EXPECT_EQ(s.layer.part_config_id(0), e.entry.config_id);
  expect_token_major_product(s.layer, t, m, k, 5, stream_);
}

}  // namespace
}  // namespace slope::testing
