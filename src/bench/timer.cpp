#include "slope/bench/timer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "slope/gpu/cuda_check.hpp"

namespace slope::bench {

Timing time_device(const std::function<void(int)>& fn, cudaStream_t stream, int samples, int warmup) {
  int call = 0;
  for (int i = 0; i < warmup; ++i) fn(call++);
  cudaEvent_t start, stop;
  SLOPE_CHECK(cudaEventCreate(&start));
  SLOPE_CHECK(cudaEventCreate(&stop));
  auto sample = [&](int calls) {
    SLOPE_CHECK(cudaEventRecord(start, stream));
    for (int i = 0; i < calls; ++i) fn(call++);
    SLOPE_CHECK(cudaEventRecord(stop, stream));
    SLOPE_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    SLOPE_CHECK(cudaEventElapsedTime(&ms, start, stop));
    return static_cast<double>(ms) / calls;
  };
  const double one = sample(1);
  const int per_sample = std::clamp(static_cast<int>(std::ceil(0.2 / std::max(one, 1e-4))), 1, 200);
  std::vector<double> times;
  for (int s = 0; s < samples; ++s) times.push_back(sample(per_sample));
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  Timing t;
  t.samples = samples;
  t.calls_per_sample = per_sample;
  t.min_ms = times.front();
  t.max_ms = times.back();
  t.median_ms = times[times.size() / 2];
  return t;
}

int rotation_count(double bytes, int cap) {
  const double target = 120e6;
  return std::clamp(static_cast<int>(std::ceil(target / std::max(bytes, 1.0))), 1, cap);
}

double host_us_per_call(const std::function<void()>& fn, int calls, cudaStream_t stream) {
  fn();
  SLOPE_CHECK(cudaStreamSynchronize(stream));
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) fn();
  const auto end = std::chrono::steady_clock::now();
  SLOPE_CHECK(cudaStreamSynchronize(stream));
  return std::chrono::duration<double, std::micro>(end - start).count() / calls;
}

}  // namespace slope::bench

#include "slope/gpu/device_buffer.hpp"

namespace slope::bench {

double measure_copy_gbps(cudaStream_t stream, size_t bytes) {
  gpu::DeviceBuffer a(bytes), b(bytes);
  SLOPE_CHECK(cudaMemsetAsync(a.get(), 1, bytes, stream));
  const Timing t = time_device(
      [&](int) { SLOPE_CHECK(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, stream)); }, stream, 10,
      2);
  return 2.0 * static_cast<double>(bytes) / (t.median_ms * 1e6);
}

}  // namespace slope::bench
