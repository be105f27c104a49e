#include "slope/gpu/stream.hpp"

#include "slope/gpu/cuda_check.hpp"

namespace slope::gpu {

Stream::Stream() { SLOPE_CHECK(cudaStreamCreate(&stream_)); }

Stream::~Stream() {
  if (stream_) cudaStreamDestroy(stream_);  // no throw from a destructor
}

}  // namespace slope::gpu
