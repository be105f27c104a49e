#include "slope/gpu/stream.hpp"

#include "slope/gpu/cuda_check.hpp"

namespace slope::gpu {

Stream::Stream(unsigned flags) { SLOPE_CHECK(cudaStreamCreateWithFlags(&stream_, flags)); }

Stream::~Stream() {
  if (stream_) cudaStreamDestroy(stream_);  // no throw from a destructor
}

Event::Event() { SLOPE_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }

Event::~Event() {
  if (event_) cudaEventDestroy(event_);
}

}  // namespace slope::gpu
