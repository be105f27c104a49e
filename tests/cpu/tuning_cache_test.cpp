#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "slope/core/error.hpp"
#include "slope/core/tuning_cache.hpp"

namespace slope {
namespace {

class TuningCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("slope_tuning_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path() const { return (dir_ / "sub" / "tuning.json").string(); }
  void write(const std::string& text) {
    std::filesystem::create_directories(dir_ / "sub");
    std::ofstream(path()) << text;
  }
  std::filesystem::path dir_;
};

TEST_F(TuningCacheTest, RoundTrip) {
  {
    TuningCache cache(path());
    EXPECT_EQ(cache.size(), 0u);
    EXPECT_TRUE(cache.warnings().empty());
    cache.put("H200|800|4096x2048x4096|fp16|rcc", {7, 3, 1, 2, 0.25});
    EXPECT_TRUE(cache.dirty());
    cache.save();  // creates the directory
  }
  TuningCache again(path());
  ASSERT_EQ(again.size(), 1u);
  const auto e = again.find("H200|800|4096x2048x4096|fp16|rcc");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->config_id, 7);
  EXPECT_EQ(e->split_k, 3);
  EXPECT_EQ(e->split_k_mode, 1);
  EXPECT_EQ(e->split_k_buffers, 2);
  EXPECT_DOUBLE_EQ(e->search_ms, 0.25);
  EXPECT_TRUE(e->same_kernel({7, 3, 1, 2, 9.0}));  // the timing aside
  EXPECT_FALSE(e->same_kernel({7, 3, 0, 2, 0.25}));
  EXPECT_FALSE(again.find("other").has_value());
  EXPECT_FALSE(again.dirty());
}

TEST_F(TuningCacheTest, UnsavablePathsAreNamedBeforeAnySave) {
  // Missing directories are fine: save() creates them.
  EXPECT_EQ(TuningCache::why_unsavable((dir_ / "a" / "b" / "tuning.json").string()), "");
  std::filesystem::create_directories(dir_ / "sub");
  EXPECT_EQ(TuningCache::why_unsavable(path()), "");
  EXPECT_NE(TuningCache::why_unsavable((dir_ / "sub").string()).find("is a directory"), std::string::npos);
  // A file where a directory would have to be made.
  std::ofstream(dir_ / "file") << "x";
  const std::string blocked = (dir_ / "file" / "deeper" / "tuning.json").string();
  EXPECT_NE(TuningCache::why_unsavable(blocked).find("is not a directory"), std::string::npos);
  TuningCache cache(blocked);
  cache.put("k", TuningEntry{});
  EXPECT_THROW(cache.save(), Error);  // what the check foresaw
}

TEST_F(TuningCacheTest, CorruptFileIsIgnoredWithAWarningAndRebuilt) {
  write("{\"format\": \"slope-tuning-cache\", \"version\": 1, \"entries\": {\"k\": {\"config_id\": ");
  TuningCache cache(path());
  EXPECT_EQ(cache.size(), 0u);
  ASSERT_EQ(cache.warnings().size(), 1u);
  EXPECT_NE(cache.warnings()[0].find("corrupt"), std::string::npos);
  cache.put("k", {1, 1, 0, 1, 0});
  cache.save();
  EXPECT_EQ(TuningCache(path()).size(), 1u);
}

TEST_F(TuningCacheTest, ForeignOrWrongVersionFilesAreIgnored) {
  write("{\"hello\": 1}");
  EXPECT_NE(TuningCache(path()).warnings().at(0).find("not a slope tuning cache"), std::string::npos);
  write("{\"format\": \"slope-tuning-cache\", \"version\": 99, \"entries\": {}}");
  EXPECT_NE(TuningCache(path()).warnings().at(0).find("version"), std::string::npos);
  write("{\"format\": \"slope-tuning-cache\", \"version\": 1, \"entries\": {\"k\": {\"config_id\": \"x\"}}}");
  TuningCache typed(path());
  EXPECT_EQ(typed.size(), 0u);
  EXPECT_EQ(typed.warnings().size(), 1u);
}

// Two runs that share a cache file (two `slope` commands at once, on one GPU or two): each
// loaded the file before the other saved, and neither may drop what the other searched.
TEST_F(TuningCacheTest, ASaveKeepsWhatAnotherRunSavedMeanwhile) {
  TuningCache first(path()), second(path());
  first.put("shape a", {3, 1, 0, 1, 0.5});
  first.put("shared", {4, 1, 0, 1, 0.5});
  first.save();
  second.put("shape b", {5, 1, 0, 1, 0.25});
  second.put("shared", {6, 2, 1, 1, 0.25});  // searched again here: the later save's own entry wins
  second.save();
  EXPECT_EQ(second.size(), 3u);  // the other run's entry is now seen here too
  ASSERT_TRUE(second.find("shape a").has_value());
  EXPECT_EQ(second.find("shape a")->config_id, 3);
  TuningCache file(path());
  ASSERT_EQ(file.size(), 3u);
  EXPECT_EQ(file.find("shape a")->config_id, 3);
  EXPECT_EQ(file.find("shape b")->config_id, 5);
  EXPECT_EQ(file.find("shared")->config_id, 6);
  EXPECT_EQ(file.find("shared")->split_k, 2);
  // An entry the first run only loaded does not overwrite a newer one on its next save.
  first.put("shape c", {7, 1, 0, 1, 0.5});
  first.save();
  EXPECT_EQ(TuningCache(path()).find("shared")->config_id, 6);
  EXPECT_EQ(first.find("shared")->config_id, 6);
  EXPECT_EQ(TuningCache(path()).size(), 4u);
}

// The lock only narrows a race: where it cannot be taken (here its path is a directory), the
// save still merges and writes.
TEST_F(TuningCacheTest, ASaveGoesAheadWhereNoLockCanBeTaken) {
  std::filesystem::create_directories(path() + ".lock");
  TuningCache first(path()), second(path());
  first.put("shape a", {3, 1, 0, 1, 0.5});
  first.save();
  second.put("shape b", {5, 1, 0, 1, 0.25});
  second.save();
  EXPECT_EQ(TuningCache(path()).size(), 2u);
}

// Saves that race: every writer holds the lock from its read to its rename, so none is lost.
TEST_F(TuningCacheTest, ConcurrentSavesLoseNoEntry) {
  constexpr int kWriters = 6, kEntries = 15;
  std::vector<std::thread> writers;
  writers.reserve(kWriters);
  for (int w = 0; w < kWriters; ++w)
    writers.emplace_back([this, w] {
      TuningCache cache(path());
      for (int e = 0; e < kEntries; ++e) {
        cache.put("writer " + std::to_string(w) + " entry " + std::to_string(e), {w, 1, 0, 1, 0.1 * e});
        cache.save();
      }
    });
  for (auto& writer : writers) writer.join();
  const TuningCache file(path());
  EXPECT_TRUE(file.warnings().empty());
  ASSERT_EQ(file.size(), static_cast<size_t>(kWriters * kEntries));
  for (int w = 0; w < kWriters; ++w) EXPECT_EQ(file.find("writer " + std::to_string(w) + " entry 0")->config_id, w);
}

}  // namespace
}  // namespace slope
