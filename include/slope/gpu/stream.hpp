// An owned CUDA stream. Experiments time on one of these rather than on the legacy default
// stream because only a created stream can be captured into a CUDA graph (bench/timer.hpp).
// It is a blocking stream: it still orders with synchronous copies on the legacy stream.
#pragma once

#include <cuda_runtime.h>

namespace slope::gpu {

class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace slope::gpu
