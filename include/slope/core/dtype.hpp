// Element types and host-side fp16/bf16 conversion (round to nearest even), so that CPU
// references see exactly the values the GPU sees.
#pragma once

#include <cstdint>
#include <string>

namespace slope {

enum class DType { kF16, kBF16, kF32 };

const char* to_string(DType dtype);
DType parse_dtype(const std::string& name);  // "fp16"/"f16"/"half", "bf16", "fp32"; throws
int64_t dtype_bytes(DType dtype);

uint16_t float_to_half_bits(float value);
float half_bits_to_float(uint16_t bits);
uint16_t float_to_bf16_bits(float value);
float bf16_bits_to_float(uint16_t bits);

// Stores `value` as a 16-bit pattern of `dtype` (kF16 or kBF16) and reads it back.
uint16_t to_bits(DType dtype, float value);
float from_bits(DType dtype, uint16_t bits);
// The value `value` becomes once stored in `dtype`.
float round_to(DType dtype, float value);

}  // namespace slope
