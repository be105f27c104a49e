// An owned CUDA stream, and an owned event for ordering work across streams. Experiments
// time on a created stream rather than on the legacy default stream because only a created
// stream can be captured into a CUDA graph (bench/timer.hpp). A default Stream is blocking:
// it still orders with synchronous copies on the legacy stream.
#pragma once

#include <cuda_runtime.h>

namespace slope::gpu {

class Stream {
 public:
  explicit Stream(unsigned flags = cudaStreamDefault);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

// An event without timing, for fork/join between streams (also inside a graph capture,
// where recording and waiting on it become the graph's edges).
class Event {
 public:
  Event();
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace slope::gpu
