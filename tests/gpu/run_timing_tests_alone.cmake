# Read by ctest after the discovered GPU tests (see CMakeLists.txt): the tests whose assertions
# compare measured times (the timer's own, a training step against its micro-batches, and a
# shape's first token-major plan against a later weight's in `slope setup`) run alone, since
# beside other GPU tests (scripts/gpu-check runs them several at a time) they would time their
# neighbours' work as well.
foreach(test IN LISTS slope_gpu_tests_TESTS)
  if(test MATCHES "^(TimerTest|ModelTrainingTest|SetupExperimentTest)\\.")
    set_tests_properties("${test}" PROPERTIES RUN_SERIAL TRUE)
  endif()
endforeach()
