#include "slope/gpu/device_buffer.hpp"

#include <atomic>
#include <utility>

#include "slope/gpu/cuda_check.hpp"

namespace slope::gpu {
namespace {
std::atomic<int64_t> g_bytes_in_use{0};
}

int64_t device_bytes_in_use() { return g_bytes_in_use.load(); }

DeviceBuffer::DeviceBuffer(size_t bytes) { reserve(bytes); }

DeviceBuffer::~DeviceBuffer() {
  if (ptr_) {
    cudaFree(ptr_);  // no throw from a destructor; a failed free is not recoverable
    g_bytes_in_use -= static_cast<int64_t>(bytes_);
  }
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (ptr_) {
      cudaFree(ptr_);
      g_bytes_in_use -= static_cast<int64_t>(bytes_);
    }
    ptr_ = std::exchange(other.ptr_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void DeviceBuffer::reserve(size_t bytes) {
  if (bytes <= bytes_) return;
  if (ptr_) {
    SLOPE_CHECK(cudaFree(ptr_));
    g_bytes_in_use -= static_cast<int64_t>(bytes_);
  }
  ptr_ = nullptr;
  bytes_ = 0;
  // 256-byte rounding keeps every buffer aligned for cuBLASLt and cuSPARSELt (16 B needed).
  const size_t rounded = (bytes + 255) / 256 * 256;
  SLOPE_CHECK(cudaMalloc(&ptr_, rounded));
  bytes_ = rounded;
  g_bytes_in_use += static_cast<int64_t>(rounded);
}

void upload_into(const MatrixF& m, DType dtype, void* dst, cudaStream_t stream) {
  std::vector<uint16_t> bits(static_cast<size_t>(m.size()));
  for (size_t i = 0; i < bits.size(); ++i) bits[i] = to_bits(dtype, m.data[i]);
  SLOPE_CHECK(cudaMemcpyAsync(dst, bits.data(), bits.size() * 2, cudaMemcpyHostToDevice, stream));
  SLOPE_CHECK(cudaStreamSynchronize(stream));
}

DeviceBuffer upload(const MatrixF& m, DType dtype, cudaStream_t stream) {
  DeviceBuffer buf(static_cast<size_t>(m.size()) * 2);
  upload_into(m, dtype, buf.get(), stream);
  return buf;
}

MatrixF download(const void* src, int64_t rows, int64_t cols, DType dtype, cudaStream_t stream) {
  std::vector<uint16_t> bits(static_cast<size_t>(rows * cols));
  SLOPE_CHECK(cudaMemcpyAsync(bits.data(), src, bits.size() * 2, cudaMemcpyDeviceToHost, stream));
  SLOPE_CHECK(cudaStreamSynchronize(stream));
  MatrixF m(rows, cols);
  for (size_t i = 0; i < bits.size(); ++i) m.data[i] = from_bits(dtype, bits[i]);
  return m;
}

std::vector<uint8_t> download_bytes(const void* src, size_t bytes, cudaStream_t stream) {
  std::vector<uint8_t> out(bytes);
  SLOPE_CHECK(cudaMemcpyAsync(out.data(), src, bytes, cudaMemcpyDeviceToHost, stream));
  SLOPE_CHECK(cudaStreamSynchronize(stream));
  return out;
}

std::vector<float> download_floats(const void* src, size_t count, cudaStream_t stream) {
  std::vector<float> out(count);
  SLOPE_CHECK(cudaMemcpyAsync(out.data(), src, count * sizeof(float), cudaMemcpyDeviceToHost, stream));
  SLOPE_CHECK(cudaStreamSynchronize(stream));
  return out;
}

void poison(void* dst, size_t elements16, cudaStream_t stream) {
  // 0xFF bytes: 0xFFFF is a NaN in both fp16 and bf16.
  SLOPE_CHECK(cudaMemsetAsync(dst, 0xFF, elements16 * 2, stream));
}

}  // namespace slope::gpu
