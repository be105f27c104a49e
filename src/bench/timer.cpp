#include "slope/bench/timer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "slope/core/error.hpp"
#include "slope/core/wall_clock.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/device_buffer.hpp"

namespace slope::bench {

namespace {

// A pair of CUDA events, destroyed on every path out.
struct EventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
  EventPair() {
    SLOPE_CHECK(cudaEventCreate(&start));
    SLOPE_CHECK(cudaEventCreate(&stop));
  }
  ~EventPair() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  EventPair(const EventPair&) = delete;
  EventPair& operator=(const EventPair&) = delete;
  // Milliseconds between the events around `enqueue`, divided by `calls`.
  double time(cudaStream_t stream, int calls, const std::function<void()>& enqueue) {
    SLOPE_CHECK(cudaEventRecord(start, stream));
    enqueue();
    SLOPE_CHECK(cudaEventRecord(stop, stream));
    SLOPE_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    SLOPE_CHECK(cudaEventElapsedTime(&ms, start, stop));
    return static_cast<double>(ms) / calls;
  }
};

struct GraphExec {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ~GraphExec() {
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
  }
};

// Calls per sample: enough to last ~0.2 ms, a multiple of the rotation.
int calls_per_sample(double one_call_ms, int rotation) {
  const int r = std::max(rotation, 1);
  const int calls = std::clamp(static_cast<int>(std::ceil(0.2 / std::max(one_call_ms, 1e-4))), 1, 200);
  return (calls + r - 1) / r * r;
}

bool capturable(cudaStream_t stream) {
  return stream != nullptr && stream != cudaStreamLegacy && stream != cudaStreamPerThread;
}

Timing summarize(std::vector<double> times, int per_sample, bool graph, int host_calls, int device_calls) {
  std::sort(times.begin(), times.end());
  Timing t;
  t.samples = static_cast<int>(times.size());
  t.calls_per_sample = per_sample;
  t.min_ms = times.front();
  t.max_ms = times.back();
  t.median_ms = times[times.size() / 2];
  t.graph = graph;
  t.host_calls = host_calls;
  t.device_calls = device_calls;
  return t;
}

// Captures `calls` calls of fn into `out`. On failure the capture is ended (so the stream
// can be used again) and the error is reported.
void capture(const std::function<void(int)>& fn, int& call, int calls, cudaStream_t stream, GraphExec& out) {
  SLOPE_CHECK(cudaStreamSynchronize(stream));
  SLOPE_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    for (int i = 0; i < calls; ++i) fn(call++);
  } catch (...) {
    cudaGraph_t broken = nullptr;
    cudaStreamEndCapture(stream, &broken);
    if (broken) cudaGraphDestroy(broken);
    cudaGetLastError();  // the capture's error is not sticky; leave none behind
    throw;
  }
  const cudaError_t ended = cudaStreamEndCapture(stream, &out.graph);
  if (ended != cudaSuccess) {
    cudaGetLastError();
    throw Error(ErrorKind::kCuda, std::string("timing: capturing the timed calls into a CUDA graph failed (") +
                                      cudaGetErrorString(ended) +
                                      "); the timed function may only enqueue work on its stream");
  }
  SLOPE_CHECK(cudaGraphInstantiate(&out.exec, out.graph, 0));
}

// One timed function made ready to sample: warmed up, its sample sized and, on a created
// stream, its sample's calls captured into a graph.
class Sampler {
 public:
  Sampler(const std::function<void(int)>& fn, cudaStream_t stream, int warmup, int rotation, bool graph)
      : fn_(fn), stream_(stream), graph_(graph && capturable(stream)) {
    for (int i = 0; i < warmup; ++i) fn_(call_++);
    // One eager call sizes the sample; whatever the host adds only makes the sample longer.
    per_sample_ = calls_per_sample(events_.time(stream_, 1, [&] { fn_(call_++); }), rotation);
    device_calls_ = call_;
    if (graph_) {
      capture(fn_, call_, per_sample_, stream_, exec_);
      SLOPE_CHECK(cudaGraphLaunch(exec_.exec, stream_));  // uploads the graph; not timed
      device_calls_ += per_sample_;
    }
  }
  // Milliseconds per call of one sample.
  double sample() {
    device_calls_ += per_sample_;
    if (graph_) return events_.time(stream_, per_sample_, [&] { SLOPE_CHECK(cudaGraphLaunch(exec_.exec, stream_)); });
    return events_.time(stream_, per_sample_, [&] {
      for (int i = 0; i < per_sample_; ++i) fn_(call_++);
    });
  }
  Timing summary(std::vector<double> times) const {
    return summarize(std::move(times), per_sample_, graph_, call_, device_calls_);
  }

 private:
  const std::function<void(int)>& fn_;
  cudaStream_t stream_;
  bool graph_;
  int call_ = 0;
  int per_sample_ = 1;
  int device_calls_ = 0;
  EventPair events_;
  GraphExec exec_;
};

Timing sample_all(Sampler& sampler, int samples) {
  require(samples > 0, "timing: at least one sample is needed");
  std::vector<double> times;
  times.reserve(static_cast<size_t>(samples));
  for (int s = 0; s < samples; ++s) times.push_back(sampler.sample());
  return sampler.summary(std::move(times));
}

PairTiming interleaved_pair(const std::function<void(int)>& fn_a, const std::function<void(int)>& fn_b,
                            cudaStream_t stream, int samples, int warmup, int rotation, bool graph) {
  require(samples > 0, "time_pair: at least one sample is needed");
  Sampler a(fn_a, stream, warmup, rotation, graph), b(fn_b, stream, warmup, rotation, graph);
  std::vector<double> ta, tb, ratios;
  for (int s = 0; s < samples; ++s) {
    // A B, then B A: a drift in clocks or temperature during the run falls on both alike.
    if (s % 2 == 0) {
      ta.push_back(a.sample());
      tb.push_back(b.sample());
    } else {
      tb.push_back(b.sample());
      ta.push_back(a.sample());
    }
    ratios.push_back(ta.back() / tb.back());
  }
  std::sort(ratios.begin(), ratios.end());
  return PairTiming{a.summary(std::move(ta)), b.summary(std::move(tb)), ratios[ratios.size() / 2]};
}

}  // namespace

Timing time_device_eager(const std::function<void(int)>& fn, cudaStream_t stream, int samples, int warmup,
                         int rotation) {
  Sampler sampler(fn, stream, warmup, rotation, false);
  return sample_all(sampler, samples);
}

Timing time_device(const std::function<void(int)>& fn, cudaStream_t stream, int samples, int warmup, int rotation) {
  Sampler sampler(fn, stream, warmup, rotation, true);
  return sample_all(sampler, samples);
}

PairTiming time_pair(const std::function<void(int)>& fn_a, const std::function<void(int)>& fn_b, cudaStream_t stream,
                     int samples, int warmup, int rotation) {
  return interleaved_pair(fn_a, fn_b, stream, samples, warmup, rotation, true);
}

PairTiming time_pair_eager(const std::function<void(int)>& fn_a, const std::function<void(int)>& fn_b,
                           cudaStream_t stream, int samples, int warmup, int rotation) {
  return interleaved_pair(fn_a, fn_b, stream, samples, warmup, rotation, false);
}

int rotation_count_for_l2(double bytes, double l2_bytes, int cap) {
  const double target = std::max(120e6, 2.0 * l2_bytes);
  return std::clamp(static_cast<int>(std::ceil(target / std::max(bytes, 1.0))), 1, cap);
}

int rotation_count(double bytes, int cap) {
  int device = 0, l2_bytes = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device) != cudaSuccess) {
    cudaGetLastError();  // no device to ask (not a sticky error): the 120 MB floor
    l2_bytes = 0;
  }
  return rotation_count_for_l2(bytes, l2_bytes, cap);
}

HostCost host_cost_per_call(const std::function<void()>& fn, cudaStream_t stream, int calls_per_batch, int batches) {
  require(calls_per_batch > 0 && batches > 0,
          "host_cost_per_call: at least one batch of one call is needed (got " + std::to_string(batches) +
              " batches of " + std::to_string(calls_per_batch) + ")");
  HostCost cost;
  cost.batches = batches;
  cost.calls_per_batch = calls_per_batch;
  fn();
  ++cost.host_calls;
  std::vector<double> means_ms;  // host milliseconds per call, one per batch
  for (int b = 0; b < batches; ++b) {
    SLOPE_CHECK(cudaStreamSynchronize(stream));  // each batch starts on an empty queue
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls_per_batch; ++i) fn();
    means_ms.push_back(ms_since(start) / calls_per_batch);
    cost.host_calls += calls_per_batch;
  }
  SLOPE_CHECK(cudaStreamSynchronize(stream));
  // The batches summarized as the device timer summarizes its samples.
  const Timing t = summarize(std::move(means_ms), calls_per_batch, false, cost.host_calls, 0);
  cost.median_us = 1000 * t.median_ms;
  cost.min_us = 1000 * t.min_ms;
  cost.max_us = 1000 * t.max_ms;
  return cost;
}

double measure_copy_gbps(cudaStream_t stream, size_t bytes) {
  gpu::DeviceBuffer a(bytes), b(bytes);
  SLOPE_CHECK(cudaMemsetAsync(a.get(), 1, bytes, stream));
  // Eager on purpose: the same copy replayed from a CUDA graph (a memcpy node) measured
  // 2.76 TB/s on the H200 against 4.22 TB/s eager; the eager copy is the ceiling our kernels
  // compete with. A 1 GiB copy hides any launch cost.
  const Timing t = time_device_eager(
      [&](int) { SLOPE_CHECK(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, stream)); }, stream, 10,
      2);
  return 2.0 * static_cast<double>(bytes) / (t.median_ms * 1e6);
}

}  // namespace slope::bench
