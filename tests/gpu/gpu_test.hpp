// Shared by the GPU tests: skip without a GPU, a stream, and upload/compare helpers.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "slope/core/random.hpp"
#include "slope/core/reference.hpp"
#include "slope/core/table.hpp"
#include "slope/gpu/cuda_check.hpp"
#include "slope/gpu/device_buffer.hpp"
#include "slope/gpu/device_info.hpp"
#include "slope/gpu/device_support.hpp"

namespace slope::testing {

class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!gpu::cuda_device_available()) GTEST_SKIP() << "no CUDA GPU on this machine";
    // A GPU without sparse tensor cores cannot run what these tests check: the library's own
    // rule says so (its kernels taken as runnable here, because a build without code for the
    // GPU at hand is a broken build, whose tests fail with require_cuda_device's message).
    int device = 0;
    SLOPE_CHECK(cudaGetDevice(&device));
    cudaDeviceProp prop{};
    SLOPE_CHECK(cudaGetDeviceProperties(&prop, device));
    const std::string why = gpu::unsupported_device_reason(prop.name, prop.major * 10 + prop.minor, true, "");
    if (!why.empty()) GTEST_SKIP() << why;
    SLOPE_CHECK(cudaStreamCreate(&stream_));
  }
  void TearDown() override {
    if (stream_) cudaStreamDestroy(stream_);
  }
  cudaStream_t stream_ = nullptr;
};

// fp16 keeps 11 significant bits, bf16 8: tolerances for a product of K terms accumulated in
// fp32 and rounded once to the 16-bit output.
inline double output_rtol(DType d) { return d == DType::kF16 ? 2e-3 : 1.6e-2; }

// `scale` widens every tolerance for results that pass through extra 16-bit roundings
// (an intermediate product stored in fp16/bf16 before it is used again).
inline void expect_close(const MatrixF& got, const MatrixF& want, DType d, double scale = 1.0) {
  const Comparison c = compare(got, want, output_rtol(d) * scale, output_rtol(d) * scale);
  EXPECT_TRUE(c.ok) << c.worst;
  EXPECT_LT(c.rel_fro_error, (d == DType::kF16 ? 1e-3 : 8e-3) * scale);
}

// A 1 x n matrix holding v (for uploading and comparing flat vectors).
inline MatrixF row_matrix(const std::vector<float>& v) {
  MatrixF m(1, static_cast<int64_t>(v.size()));
  m.data = v;
  return m;
}

// The first `cols` columns of m: a token-major Y read back from a buffer with wider rows.
inline MatrixF first_columns(const MatrixF& m, int64_t cols) {
  MatrixF out(m.rows, cols);
  for (int64_t i = 0; i < m.rows; ++i)
    for (int64_t j = 0; j < cols; ++j) out(i, j) = m(i, j);
  return out;
}

// X widened to `width` features with junk past its columns, large values and NaN in turn:
// a product must overwrite them (the folded form's adapter features; a zero weight times NaN
// is NaN) or never read them (a row stride wider than what the layer reads).
inline MatrixF widened(const MatrixF& x, int64_t width, DType dtype) {
  const MatrixF junk = random_matrix(x.rows, std::max<int64_t>(width - x.cols, 1), 6, dtype, 64.0f);
  MatrixF out(x.rows, width);
  for (int64_t i = 0; i < x.rows; ++i)
    for (int64_t j = 0; j < width; ++j)
      out(i, j) = j < x.cols ? x(i, j) : ((i + j) % 2 ? std::nanf("") : junk(i, j - x.cols));
  return out;
}

// The number an experiment's summary holds under `key`, or nothing where it has no such key.
inline std::optional<double> summary_number(const Metadata& summary, const std::string& key) {
  for (const auto& [k, v] : summary)
    if (k == key) return std::stod(v);
  return std::nullopt;
}

}  // namespace slope::testing
