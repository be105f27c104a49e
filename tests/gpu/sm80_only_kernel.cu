#include "sm80_only_kernel.hpp"

namespace slope::testing {
namespace {
__global__ void Sm80OnlyKernel() {}
}  // namespace

const void* sm80_only_kernel() { return reinterpret_cast<const void*>(&Sm80OnlyKernel); }

}  // namespace slope::testing
