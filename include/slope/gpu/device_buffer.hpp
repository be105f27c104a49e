// Owning device memory (cudaMalloc'd, freed on destruction), movable, never copied.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "slope/core/dtype.hpp"
#include "slope/core/matrix.hpp"

namespace slope::gpu {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return ptr_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }
  // Grows (never shrinks) to at least `bytes`; the contents are not kept.
  void reserve(size_t bytes);

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Bytes currently held by all DeviceBuffers of the process (what slope itself allocated):
// the measured side of the memory check.
int64_t device_bytes_in_use();

// Host <-> device copies of 16-bit matrices (row-major), synchronous on `stream`.
DeviceBuffer upload(const MatrixF& m, DType dtype, cudaStream_t stream);
void upload_into(const MatrixF& m, DType dtype, void* dst, cudaStream_t stream);
MatrixF download(const void* src, int64_t rows, int64_t cols, DType dtype, cudaStream_t stream);
std::vector<uint8_t> download_bytes(const void* src, size_t bytes, cudaStream_t stream);
std::vector<float> download_floats(const void* src, size_t count, cudaStream_t stream);

// Sets every 16-bit element to a NaN pattern, so a result that is never written shows up.
void poison(void* dst, size_t elements16, cudaStream_t stream);

}  // namespace slope::gpu
