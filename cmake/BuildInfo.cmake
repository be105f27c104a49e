# Every result file records the commit that made it. The commit is read at build time (not
# configure time) so that a rebuild after `git commit` never reports a stale hash.
set(SLOPE_BUILD_INFO_CPP "${CMAKE_CURRENT_BINARY_DIR}/generated/build_info.cpp")
add_custom_target(slope_build_info_gen
  COMMAND "${CMAKE_COMMAND}" -DSOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}
          -DOUTPUT=${SLOPE_BUILD_INFO_CPP} -DBUILD_TYPE=${CMAKE_BUILD_TYPE}
          -P ${CMAKE_CURRENT_SOURCE_DIR}/cmake/WriteBuildInfo.cmake
  BYPRODUCTS "${SLOPE_BUILD_INFO_CPP}"
  COMMENT "Recording the git commit"
  VERBATIM)
