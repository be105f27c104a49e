#include "slope/gpu/compressed_layout.hpp"

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "slope/core/sparselt_metadata.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/device_buffer.hpp"
#include "slope/gpu/kernels.hpp"
#include "slope/gpu/positions.hpp"
#include "slope/gpu/refresh_kernels.hpp"

namespace slope::gpu {

CompressedLayoutFacts compressed_layout_facts(const SparseLtContext& ctx, int64_t m, int64_t k, DType dtype,
                                              cudaStream_t stream) {
  static std::mutex mutex;
  static std::map<std::string, CompressedLayoutFacts> checked;
  const std::string key = ctx.version() + "|" + ctx.gpu() + "|" + std::to_string(m) + "x" + std::to_string(k) + "|" +
                          to_string(dtype);
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (const auto it = checked.find(key); it != checked.end()) return it->second;
  }
  const int64_t n = m * k;
  DeviceBuffer dense(n * 2), kept(n), indices(n / 8), gathered(n);
  // Random positions (from pruning random data), then nonzero values on exactly those.
  fill_uniform(dense.get(), n, 0x5eed, 1.0f, dtype, stream);
  prune_rows_2to4(dense.get(), dense.get(), indices.as<uint8_t>(), m, k, dtype, stream);
  fill_nonzero(kept.get(), n / 2, 0x5eee, dtype, stream);
  scatter_kept_2to4(kept.get(), indices.as<uint8_t>(), dense.get(), m, k, dtype, stream);
  CompressedWeight compressed(ctx, m, k, dtype);
  compressed.compress(dense.get(), stream);
  // Exact lengths: a DeviceBuffer rounds its size up to 256 bytes, and the tail is not written.
  const auto value_bytes = static_cast<size_t>(n);
  const std::vector<uint8_t> kept_bytes = download_bytes(kept.get(), value_bytes, stream);
  CompressedLayoutFacts facts;
  facts.values_lead = kept_bytes == download_bytes(compressed.data(), value_bytes, stream);
  // The metadata holds the positions where a gather through it, as the kernels read it, picks
  // the kept values back out of the dense matrix (nonzero there, zero elsewhere). The reader
  // takes whole tiles of metadata: only where the buffer holds them.
  const auto metadata_end = static_cast<size_t>(sparselt_metadata_offset(m, k, 2) + sparselt_metadata_bytes(m, k));
  if (metadata_end <= compressed.bytes()) {
    gather_kept_2to4(dense.get(), Positions2to4::in_compressed(compressed.data(), m, k), gathered.get(), m, k, false,
                     dtype, stream);
    facts.metadata_holds_positions = download_bytes(gathered.get(), value_bytes, stream) == kept_bytes;
  }
  std::lock_guard<std::mutex> lock(mutex);
  checked[key] = facts;
  return facts;
}

}  // namespace slope::gpu
