# The CUDA architectures a build compiles for when the caller names none
# (-DCMAKE_CUDA_ARCHITECTURES=... always wins): those of the GPUs nvidia-smi lists on this
# machine, so that a plain build runs on the GPU it is built beside (an A100 runs no sm_90
# code); where it lists none, as on a build machine without a GPU, 90: the H200 the
# project's results come from. An architecture number also brings its PTX (CMake's rule), which
# the driver compiles for newer GPUs.

# Turns nvidia-smi's compute capabilities ("9.0\n8.6\n") into CMake's list ("90;86"): each
# once, and none below 8.0, where there are no sparse tensor cores for cuSPARSELt.
function(slope_architectures_from_compute_caps text out)
  string(REGEX MATCHALL "[0-9]+\\.[0-9]+" caps "${text}")
  set(archs "")
  foreach(cap IN LISTS caps)
    string(REPLACE "." "" arch "${cap}")
    if(arch GREATER_EQUAL 80)
      list(APPEND archs "${arch}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES archs)
  set(${out} "${archs}" PARENT_SCOPE)
endfunction()

# This machine's architectures, or 90. SLOPE_NVIDIA_SMI names the tool (found on PATH
# unless set; the test sets a stand-in).
function(slope_default_cuda_architectures out)
  find_program(SLOPE_NVIDIA_SMI nvidia-smi)
  set(archs "")
  if(SLOPE_NVIDIA_SMI)
    execute_process(COMMAND "${SLOPE_NVIDIA_SMI}" --query-gpu=compute_cap --format=csv,noheader
                    RESULT_VARIABLE rc OUTPUT_VARIABLE caps ERROR_QUIET)
    if(rc EQUAL 0)
      slope_architectures_from_compute_caps("${caps}" archs)
    endif()
  endif()
  if(archs)
    message(STATUS "slope: CUDA architectures ${archs}, this machine's GPUs (-DCMAKE_CUDA_ARCHITECTURES=... picks others)")
  else()
    set(archs 90)
    message(STATUS "slope: CUDA architectures 90: no GPU of compute capability 8.0 or newer listed here (-DCMAKE_CUDA_ARCHITECTURES=... picks others)")
  endif()
  set(${out} "${archs}" PARENT_SCOPE)
endfunction()
