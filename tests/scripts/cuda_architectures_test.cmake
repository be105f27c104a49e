# cmake -DSOURCE_DIR=... -DWORK_DIR=... -P tests/scripts/cuda_architectures_test.cmake
# The default CUDA architectures (cmake/CudaArchitectures.cmake): nvidia-smi's compute
# capabilities turned into CMake's list, and 90 where it lists no usable GPU or fails.
include("${SOURCE_DIR}/cmake/CudaArchitectures.cmake")

function(expect_archs caps expected)
  slope_architectures_from_compute_caps("${caps}" got)
  if(NOT "${got}" STREQUAL "${expected}")
    message(FATAL_ERROR "compute capabilities '${caps}': expected '${expected}', got '${got}'")
  endif()
endfunction()
expect_archs("9.0\n" "90")
expect_archs("9.0\n9.0\n8.6\n" "90;86")      # each architecture once, in nvidia-smi's order
expect_archs("12.0\n10.0\n" "120;100")
expect_archs("8.0\n7.5\n" "80")               # a T4 has no sparse tensor cores
expect_archs("7.0\n" "")
expect_archs("[N/A]\n" "")

# The whole default, with a stand-in nvidia-smi that prints $CAPS and exits with $RC.
file(MAKE_DIRECTORY "${WORK_DIR}")
set(SLOPE_NVIDIA_SMI "${WORK_DIR}/nvidia-smi")
file(WRITE "${SLOPE_NVIDIA_SMI}" "#!/bin/sh\n[ \"$1 $2\" = '--query-gpu=compute_cap --format=csv,noheader' ] || exit 7\nprintf \"$CAPS\"\nexit \"$RC\"\n")
file(CHMOD "${SLOPE_NVIDIA_SMI}" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)
function(expect_default caps rc expected)
  set(ENV{CAPS} "${caps}")
  set(ENV{RC} "${rc}")
  slope_default_cuda_architectures(got)
  if(NOT "${got}" STREQUAL "${expected}")
    message(FATAL_ERROR "nvidia-smi printing '${caps}' (exit ${rc}): expected '${expected}', got '${got}'")
  endif()
endfunction()
expect_default("8.0\\n" 0 "80")
expect_default("9.0\\n8.9\\n" 0 "90;89")
expect_default("7.5\\n" 0 "90")              # no usable GPU listed: the H200's
expect_default("" 9 "90")                     # nvidia-smi failed (no driver loaded)
set(SLOPE_NVIDIA_SMI "${WORK_DIR}/not-there")
expect_default("8.0\\n" 0 "90")               # no nvidia-smi to run
message(STATUS "cuda_architectures: all cases pass")
