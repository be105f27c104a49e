// Facts about the GPU and libraries that every GPU result records.
#pragma once

#include <string>

#include "slope/core/library_release.hpp"
#include "slope/core/table.hpp"

namespace slope::gpu {

struct DeviceInfo {
  std::string name;
  int sm_count = 0;
  int compute_capability = 0;  // e.g. 90
  long long l2_bytes = 0;
  long long memory_bytes = 0;
  std::string driver;          // CUDA driver API version, e.g. "13.0"
  std::string runtime;         // CUDA runtime version
  std::string cusparselt;      // e.g. "0.8.0"
  std::string cublas;
  std::string nvrtc;           // cuSPARSELt compiles some kernels at run time with NVRTC
};

// True when at least one CUDA device is usable.
bool cuda_device_available();
// Throws kUnsupported naming the reason when slope cannot use the current CUDA device: none
// visible, one without sparse tensor cores, or one this build has no GPU code for
// (device_support.hpp).
void require_cuda_device();
DeviceInfo query_device_info();
// The cuSPARSELt release slope was compiled against (its header) and the one loaded.
LibraryRelease built_cusparselt_release();
LibraryRelease loaded_cusparselt_release();
// Appends gpu, driver, cuda, cusparselt, cublas entries to result metadata.
void append_device_metadata(Metadata& meta, const DeviceInfo& info);

}  // namespace slope::gpu
