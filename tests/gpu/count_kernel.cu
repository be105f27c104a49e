// A kernel that counts its own launches, for the timing tests: the device-side count tells
// how often the work really ran, whatever the host did.
#include "count_kernel.hpp"

namespace slope::testing {
namespace {
__global__ void count_launch(int* counter) { atomicAdd(counter, 1); }
}  // namespace

cudaError_t launch_count(int* counter, cudaStream_t stream) {
  count_launch<<<1, 1, 0, stream>>>(counter);
  return cudaGetLastError();
}

}  // namespace slope::testing
