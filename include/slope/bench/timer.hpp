// Device timing with CUDA events: warm-up, then samples of one or more calls each (enough
// to last ~0.2 ms so the event resolution does not matter), median per call.
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
};

// Times fn(i), where i counts calls so that the caller can rotate inputs (to keep the L2
// from holding them). `samples` samples after `warmup` calls.
Timing time_device(const std::function<void(int)>& fn, cudaStream_t stream, int samples = 30, int warmup = 5);

// How many copies of a working set of `bytes` to rotate through so that the total is at
// least twice a 60 MB L2 (at most `cap`).
int rotation_count(double bytes, int cap = 32);

// Host microseconds per call of fn() in steady state: `calls` back-to-back calls with no
// synchronisation in between (what the CPU pays to enqueue one call).
double host_us_per_call(const std::function<void()>& fn, int calls, cudaStream_t stream);

}  // namespace slope::bench

namespace slope::bench {

// Device-to-device copy bandwidth in GB/s (bytes read plus bytes written), the ceiling for
// memory-bound kernels: cudaMemcpyAsync of `bytes` (default 1 GiB), median of 10.
double measure_copy_gbps(cudaStream_t stream, size_t bytes = size_t{1} << 30);

}  // namespace slope::bench
