#include "slope/core/dtype.hpp"

#include <bit>
#include <cmath>

#include "slope/core/error.hpp"

namespace slope {

const char* to_string(DType dtype) {
  switch (dtype) {
    case DType::kF16: return "fp16";
    case DType::kBF16: return "bf16";
    case DType::kF32: return "fp32";
  }
  return "?";
}

DType parse_dtype(const std::string& name) {
  if (name == "fp16" || name == "f16" || name == "half" || name == "float16") return DType::kF16;
  if (name == "bf16" || name == "bfloat16") return DType::kBF16;
  if (name == "fp32" || name == "f32" || name == "float32") return DType::kF32;
  throw Error(ErrorKind::kInvalidInput, "unknown dtype '" + name + "' (expected fp16 or bf16)");
}

int64_t dtype_bytes(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

uint16_t float_to_half_bits(float value) {
  const uint32_t f = std::bit_cast<uint32_t>(value);
  const uint32_t sign = (f >> 16) & 0x8000u;
  const uint32_t abs = f & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or NaN; keep NaN quiet and non-zero
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (abs < 0x38800000u) {
    // Subnormal half (or zero): shift the mantissa with its implicit bit into place and
    // round to nearest even on the bits that fall off.
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // below half of the smallest
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    // value = mant * 2^(exp - 150) and a subnormal half holds value / 2^-24.
    const uint32_t shift = 126 - exp;
    const uint32_t half_mant = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t halfway = 1u << (shift - 1);
    uint32_t result = half_mant;
    if (rem > halfway || (rem == halfway && (half_mant & 1u))) ++result;
    return static_cast<uint16_t>(sign | result);
  }
  // Normal: rebias the exponent, round the 13 dropped mantissa bits to nearest even.
  uint32_t result = ((abs >> 13) - ((127 - 15) << 10));
  const uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (result & 1u))) ++result;
  return static_cast<uint16_t>(sign | result);
}

float half_bits_to_float(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exp = (bits >> 10) & 0x1fu;
  const uint32_t mant = bits & 0x3ffu;
  if (exp == 0) {
    const float magnitude = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  return std::bit_cast<float>(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

uint16_t float_to_bf16_bits(float value) {
  const uint32_t f = std::bit_cast<uint32_t>(value);
  if ((f & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((f >> 16) | 0x40u);  // NaN
  const uint32_t rounding = 0x7fffu + ((f >> 16) & 1u);
  return static_cast<uint16_t>((f + rounding) >> 16);
}

float bf16_bits_to_float(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

uint16_t to_bits(DType dtype, float value) {
  switch (dtype) {
    case DType::kF16: return float_to_half_bits(value);
    case DType::kBF16: return float_to_bf16_bits(value);
    case DType::kF32: break;
  }
  throw Error(ErrorKind::kInvalidInput, "to_bits needs a 16-bit dtype");
}

float from_bits(DType dtype, uint16_t bits) {
  switch (dtype) {
    case DType::kF16: return half_bits_to_float(bits);
    case DType::kBF16: return bf16_bits_to_float(bits);
    case DType::kF32: break;
  }
  throw Error(ErrorKind::kInvalidInput, "from_bits needs a 16-bit dtype");
}

float round_to(DType dtype, float value) {
  if (dtype == DType::kF32) return value;
  return from_bits(dtype, to_bits(dtype, value));
}

}  // namespace slope
