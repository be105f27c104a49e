// Device timing with CUDA events: warm-up, then samples of one or more calls each (enough
// to last ~0.2 ms so the event resolution does not matter), median per call.
//
// Why CUDA graphs. One cuBLASLt or cuSPARSELt call costs the host 7-12 us to enqueue on the
// H200 machine, as long as the whole product for the paper's small shapes (d <= 1024). Back
// to back eager launches then measure the CPU, not the GPU. So on a created stream the calls
// of one sample are captured once into a CUDA graph and the graph is replayed: the samples
// time the device alone, as a model captured into a graph (or any GPU-bound pipeline) runs
// them. The legacy default stream cannot be captured: there, and through time_device_eager,
// the calls are launched one by one. The host cost is measured on its own
// (host_cost_per_call).
#pragma once

#include <cuda_runtime.h>

#include <functional>

namespace slope::bench {

struct Timing {
  double median_ms = 0.0;
  double min_ms = 0.0;
  double max_ms = 0.0;
  int samples = 0;
  int calls_per_sample = 0;
  bool graph = false;   // the samples replayed a captured CUDA graph
  int host_calls = 0;   // times fn was invoked on the host (warm-up, sizing, capture or samples)
  int device_calls = 0; // times its work ran on the device
};

// Times fn(i), where i counts calls so that the caller can rotate inputs (to keep the L2
// from holding them): `samples` samples after `warmup` calls. `rotation`: how many operand
// sets fn cycles through; a sample's call count is rounded up to a multiple of it, so that a
// replayed graph never uses the same set twice in a row.
//
// fn must only enqueue work on `stream` (or on streams forked from it with events): a host
// synchronisation inside fn cannot be captured and ends in an Error naming the failure, with
// the stream left usable.
Timing time_device(const std::function<void(int)>& fn, cudaStream_t stream, int samples = 30, int warmup = 5,
                   int rotation = 1);

// The same with every call launched from the host (what an eager framework does): bound by
// host overhead when the calls are short.
Timing time_device_eager(const std::function<void(int)>& fn, cudaStream_t stream, int samples = 30,
                         int warmup = 5, int rotation = 1);

// Two functions timed in one run, their samples interleaved (A B, B A, A B, ...) so that a
// change of clocks or temperature during the run does not favour either; for comparing
// sparse with dense. `ratio_median`: the median over sample pairs of a's time over b's.
struct PairTiming {
  Timing a, b;
  double ratio_median = 0.0;
};
PairTiming time_pair(const std::function<void(int)>& fn_a, const std::function<void(int)>& fn_b, cudaStream_t stream,
                     int samples = 30, int warmup = 5, int rotation = 1);
// The same with every call launched from the host, for functions that synchronise (an
// optimizer step reading its gradient norm).
PairTiming time_pair_eager(const std::function<void(int)>& fn_a, const std::function<void(int)>& fn_b,
                           cudaStream_t stream, int samples = 30, int warmup = 5, int rotation = 1);

// How each timer times, for the `timing` field of result files.
inline constexpr char kGraphTiming[] =
    "CUDA events around a replayed CUDA graph of each sample's calls (device time, no host launch cost); "
    "inputs rotated past the L2";
inline constexpr char kPairedGraphTiming[] =
    "CUDA events around replayed CUDA graphs of each sample's calls (device time, no host launch cost), "
    "sparse and dense samples interleaved; inputs rotated past the L2";
inline constexpr char kEagerTiming[] = "CUDA events around eager launches; inputs rotated past the L2";

// How many copies of a working set of `bytes` to rotate through so that each sample reads
// its operands from device memory, not from the L2: together at least twice the current
// GPU's L2, and never under 120 MB (the target before the L2 was asked), at most `cap` copies.
int rotation_count(double bytes, int cap = 32);
// The same for a GPU whose L2 holds `l2_bytes`.
int rotation_count_for_l2(double bytes, double l2_bytes, int cap = 32);

// Host microseconds per call of fn() in steady state (what the CPU pays to enqueue one call):
// `batches` batches of `calls_per_batch` back-to-back calls with no synchronisation in between,
// the stream drained between batches; the median of the batches' means. One batch alone can
// be caught by a descheduled thread: a single batch of 200 calls read 24 us at d = 5120 where
// its neighbours read 13-18 us (setup.csv at c69139c).
struct HostCost {
  double median_us = 0.0;  // over the batches' means
  double min_us = 0.0;
  double max_us = 0.0;
  int batches = 0;
  int calls_per_batch = 0;
  int host_calls = 0;  // times fn was invoked (one warm-up call, then the batches)
};
HostCost host_cost_per_call(const std::function<void()>& fn, cudaStream_t stream, int calls_per_batch = 50,
                            int batches = 9);

}  // namespace slope::bench

namespace slope::bench {

// Device-to-device copy bandwidth in GB/s (bytes read plus bytes written), the ceiling for
// memory-bound kernels: cudaMemcpyAsync of `bytes` (default 1 GiB), median of 10.
double measure_copy_gbps(cudaStream_t stream, size_t bytes = size_t{1} << 30);

}  // namespace slope::bench
