#pragma once

namespace slope::testing {

// A kernel compiled to sm_80 machine code only, without PTX (tests/gpu/CMakeLists.txt): it runs
// on GPUs of compute capability 8.x and on no other.
const void* sm80_only_kernel();

}  // namespace slope::testing
