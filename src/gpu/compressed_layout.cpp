#include "slope/gpu/compressed_layout.hpp"

#include <map>
#include <mutex>
#include <string>

#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/device_buffer.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/refresh_kernels.hpp"

namespace slope::gpu {

bool compressed_values_lead(const SparseLtContext& ctx, int64_t m, int64_t k, DType dtype, cudaStream_t stream) {
  static std::mutex mutex;
  static std::map<std::string, bool> checked;
  const std::string key = ctx.version() + "|" + ctx.gpu() + "|" + std::to_string(m) + "x" + std::to_string(k) + "|" +
                          to_string(dtype);
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (const auto it = checked.find(key); it != checked.end()) return it->second;
  }
  const int64_t n = m * k;
  DeviceBuffer dense(n * 2), kept(n), indices(n / 8);
  // Random positions (from pruning random data), then nonzero values on exactly those.
  fill_uniform(dense.get(), n, 0x5eed, 1.0f, dtype, stream);
  prune_rows_2to4(dense.get(), dense.get(), indices.as<uint8_t>(), m, k, dtype, stream);
  fill_nonzero(kept.get(), n / 2, 0x5eee, dtype, stream);
  scatter_kept_2to4(kept.get(), indices.as<uint8_t>(), dense.get(), m, k, dtype, stream);
  CompressedWeight compressed(ctx, m, k, dtype);
  compressed.compress(dense.get(), stream);
  const std::vector<uint8_t> want = download_bytes(kept.get(), kept.bytes(), stream);
  const std::vector<uint8_t> got = download_bytes(compressed.data(), kept.bytes(), stream);
  const bool ok = want == got;
  std::lock_guard<std::mutex> lock(mutex);
  checked[key] = ok;
  return ok;
}

}  // namespace slope::gpu
