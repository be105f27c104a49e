// The 2:4 ranking rule of slope::nm_mask on the device, shared by every kernel that prunes.
#pragma once

namespace slope::gpu {

// Element i of a group of four magnitudes (see rank_magnitude) is kept when fewer than 2
// group members outrank it: a larger magnitude, or an equal one at a lower index.
__device__ __forceinline__ bool kept_in_group4(const float (&mag)[4], int i) {
  int rank = 0;
#pragma unroll
  for (int j = 0; j < 4; ++j) rank += (mag[j] > mag[i]) || (mag[j] == mag[i] && j < i);
  return rank < 2;
}

}  // namespace slope::gpu
