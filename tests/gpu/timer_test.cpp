// The device timer: on a created stream the timed calls run from a CUDA graph, exactly as
// often as the timing says; on the legacy stream, or when asked, they run eagerly; a timed
// function that cannot be captured is reported and leaves the stream usable.
#include "slope/bench/timer.hpp"

#include <chrono>

#include "count_kernel.hpp"
#include "gpu_test.hpp"

namespace slope::testing {
namespace {

class TimerTest : public GpuTest {
 protected:
  void SetUp() override {
    GpuTest::SetUp();
    if (!IsSkipped()) counter_.reserve(sizeof(int));  // no device memory without a GPU
  }
  int device_count() {
    int count = 0;
    SLOPE_CHECK(cudaMemcpy(&count, counter_.get(), sizeof(int), cudaMemcpyDeviceToHost));
    return count;
  }
  void reset() { SLOPE_CHECK(cudaMemset(counter_.get(), 0, sizeof(int))); }
  gpu::DeviceBuffer counter_;
};

TEST(RotationCount, CoversTwiceTheL2AndNeverUnder120MegabytesWithinTheCap) {
  EXPECT_EQ(bench::rotation_count_for_l2(10e6, 50e6), 12);     // 120 MB: an L2 of 50 MB
  EXPECT_EQ(bench::rotation_count_for_l2(10e6, 126e6), 26);    // 252 MB: a larger L2
  EXPECT_EQ(bench::rotation_count_for_l2(1e6, 0, 32), 32);     // capped
  EXPECT_EQ(bench::rotation_count_for_l2(1e6, 0, 8), 8);
  EXPECT_EQ(bench::rotation_count_for_l2(500e6, 60e6), 1);     // one set is already past it
}

TEST_F(TimerTest, RotationCountAsksTheGpuForItsL2) {
  int device = 0, l2_bytes = 0;
  SLOPE_CHECK(cudaGetDevice(&device));
  SLOPE_CHECK(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device));
  ASSERT_GT(l2_bytes, 0);
  for (double bytes : {1e6, 3.3e6, 17e6, 64e6})
    EXPECT_EQ(bench::rotation_count(bytes, 32), bench::rotation_count_for_l2(bytes, l2_bytes, 32)) << bytes;
  // 30 sets of 1/29.5 of the target: on a GPU whose L2 exceeds 60 MB (the H200's is 60 MiB),
  // a count that ignored the L2 would give 29 or fewer.
  const double target = std::max(120e6, 2.0 * l2_bytes);
  EXPECT_EQ(bench::rotation_count(target / 29.5, 32), 30) << "L2 of " << l2_bytes << " bytes";
}

TEST_F(TimerTest, GraphReplaysTheCapturedCallsOnCreatedStream) {
  reset();
  int host_calls = 0;
  std::vector<int> indices;
  const bench::Timing t = bench::time_device(
      [&](int i) {
        ++host_calls;
        indices.push_back(i);
        SLOPE_CHECK(launch_count(static_cast<int*>(counter_.get()), stream_));
      },
      stream_, 7, 3, 4);
  SLOPE_CHECK(cudaStreamSynchronize(stream_));
  EXPECT_TRUE(t.graph);
  EXPECT_EQ(t.samples, 7);
  EXPECT_EQ(t.calls_per_sample % 4, 0) << "a sample's calls are a multiple of the rotation";
  EXPECT_EQ(host_calls, t.host_calls);
  EXPECT_EQ(host_calls, 3 + 1 + t.calls_per_sample) << "warm-up, one sizing call, one capture";
  EXPECT_EQ(device_count(), t.device_calls);
  EXPECT_EQ(t.device_calls, 3 + 1 + t.calls_per_sample * (7 + 1)) << "the graph ran once untimed, then per sample";
  for (size_t i = 0; i < indices.size(); ++i) EXPECT_EQ(indices[i], static_cast<int>(i)) << "call indices count up";
  EXPECT_GT(t.median_ms, 0.0);
  EXPECT_LE(t.min_ms, t.median_ms);
  EXPECT_LE(t.median_ms, t.max_ms);
}

TEST_F(TimerTest, LegacyStreamAndEagerTimingLaunchEveryCall) {
  for (cudaStream_t s : {static_cast<cudaStream_t>(nullptr), stream_}) {
    reset();
    int host_calls = 0;
    auto fn = [&](int) {
      ++host_calls;
      SLOPE_CHECK(launch_count(static_cast<int*>(counter_.get()), s));
    };
    // The legacy stream cannot be captured, so time_device launches eagerly there too.
    const bench::Timing t = s == nullptr ? bench::time_device(fn, s, 5, 2) : bench::time_device_eager(fn, s, 5, 2);
    SLOPE_CHECK(cudaDeviceSynchronize());
    EXPECT_FALSE(t.graph);
    EXPECT_EQ(host_calls, 2 + 1 + 5 * t.calls_per_sample);
    EXPECT_EQ(t.host_calls, host_calls);
    EXPECT_EQ(device_count(), host_calls);
  }
}

TEST_F(TimerTest, PairedTimingInterleavesBothFunctionsAndRatesThemPerSample) {
  reset();
  // b does the work of a three times over: its samples must be about three times longer.
  gpu::DeviceBuffer other(sizeof(int));
  SLOPE_CHECK(cudaMemset(other.get(), 0, sizeof(int)));
  int a_calls = 0, b_calls = 0;
  auto a = [&](int) {
    ++a_calls;
    SLOPE_CHECK(launch_count(static_cast<int*>(counter_.get()), stream_));
  };
  auto b = [&](int) {
    ++b_calls;
    for (int k = 0; k < 3; ++k) SLOPE_CHECK(launch_count(static_cast<int*>(other.get()), stream_));
  };
  const bench::PairTiming p = bench::time_pair(a, b, stream_, 9, 2, 2);
  SLOPE_CHECK(cudaStreamSynchronize(stream_));
  EXPECT_TRUE(p.a.graph);
  EXPECT_TRUE(p.b.graph);
  EXPECT_EQ(p.a.samples, 9);
  EXPECT_EQ(p.b.samples, 9);
  EXPECT_EQ(p.a.calls_per_sample % 2, 0);
  EXPECT_EQ(a_calls, p.a.host_calls);
  EXPECT_EQ(b_calls, p.b.host_calls);
  EXPECT_EQ(device_count(), p.a.device_calls) << "a's work ran exactly as often as its timing says";
  int b_count = 0;
  SLOPE_CHECK(cudaMemcpy(&b_count, other.get(), sizeof(int), cudaMemcpyDeviceToHost));
  EXPECT_EQ(b_count, 3 * p.b.device_calls);
  EXPECT_GT(p.ratio_median, 0.0);
  EXPECT_LT(p.ratio_median, 1.0) << "a is the shorter of the two";
  EXPECT_THROW(bench::time_pair(a, b, stream_, 0, 1, 1), Error);
}

TEST_F(TimerTest, EagerPairedTimingTakesCallsThatSynchronise) {
  reset();
  gpu::DeviceBuffer other(sizeof(int));
  SLOPE_CHECK(cudaMemset(other.get(), 0, sizeof(int)));
  // Both synchronise the stream, as an optimizer step reading its gradient norm does.
  auto a = [&](int) {
    SLOPE_CHECK(launch_count(static_cast<int*>(counter_.get()), stream_));
    SLOPE_CHECK(cudaStreamSynchronize(stream_));
  };
  auto b = [&](int) {
    for (int k = 0; k < 3; ++k) SLOPE_CHECK(launch_count(static_cast<int*>(other.get()), stream_));
    SLOPE_CHECK(cudaStreamSynchronize(stream_));
  };
  const bench::PairTiming p = bench::time_pair_eager(a, b, stream_, 5, 1, 1);
  EXPECT_FALSE(p.a.graph);
  EXPECT_FALSE(p.b.graph);
  EXPECT_EQ(p.a.samples, 5);
  EXPECT_EQ(device_count(), p.a.device_calls) << "a's work ran exactly as often as its timing says";
  int b_count = 0;
  SLOPE_CHECK(cudaMemcpy(&b_count, other.get(), sizeof(int), cudaMemcpyDeviceToHost));
  EXPECT_EQ(b_count, 3 * p.b.device_calls);
  EXPECT_GT(p.ratio_median, 0.0);
}

TEST_F(TimerTest, UncapturableCallIsAnErrorAndTheStreamStaysUsable) {
  reset();
  auto syncs = [&](int) {
    SLOPE_CHECK(launch_count(static_cast<int*>(counter_.get()), stream_));
    SLOPE_CHECK(cudaStreamSynchronize(stream_));  // a host sync: not allowed inside a capture
  };
  EXPECT_THROW(bench::time_device(syncs, stream_, 3, 1), Error);
  // The stream works again and no error is left pending.
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  reset();
  SLOPE_CHECK(launch_count(static_cast<int*>(counter_.get()), stream_));
  SLOPE_CHECK(cudaStreamSynchronize(stream_));
  EXPECT_EQ(device_count(), 1);
}

TEST_F(TimerTest, HostCostIsTheMedianBatchSoOneStalledBatchDoesNotDecideIt) {
  reset();
  int host_calls = 0;
  auto fn = [&] {
    ++host_calls;
    SLOPE_CHECK(launch_count(static_cast<int*>(counter_.get()), stream_));
    // Call 25 (the third batch of 10, after the warm-up call) stalls the host for 2 ms, as a
    // descheduled thread would: that batch's mean grows by at least 200 us.
    if (host_calls == 25) {
      const auto start = std::chrono::steady_clock::now();
      while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(2)) {
      }
    }
  };
  const bench::HostCost cost = bench::host_cost_per_call(fn, stream_, 10, 5);
  EXPECT_EQ(cost.batches, 5);
  EXPECT_EQ(cost.calls_per_batch, 10);
  EXPECT_EQ(host_calls, 1 + 5 * 10) << "one warm-up call, then the batches";
  EXPECT_EQ(cost.host_calls, host_calls);
  EXPECT_EQ(device_count(), host_calls) << "every call's work ran, and the stream was drained";
  EXPECT_GT(cost.min_us, 0.0);
  EXPECT_LE(cost.min_us, cost.median_us);
  EXPECT_GE(cost.max_us, 200.0) << "the stalled batch is the slowest";
  EXPECT_LT(cost.median_us, cost.max_us - 100.0) << "the median is not the stalled batch";
  EXPECT_THROW(bench::host_cost_per_call(fn, stream_, 0, 5), Error);
  EXPECT_THROW(bench::host_cost_per_call(fn, stream_, 10, 0), Error);
}

}  // namespace
}  // namespace slope::testing
