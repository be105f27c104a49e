# `cmake --install BUILD --prefix P` installs the libraries, their headers and the `slope`
# command so that another CMake project can use them (examples/ is one):
#   find_package(slope CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE slope::slope_core)   # CPU: pruning, memory model
#   target_link_libraries(app PRIVATE slope::slope_gpu)    # where slope::slope_gpu exists
# The libraries are static; their dependencies (fmt, nlohmann_json, and for slope_gpu the
# CUDA toolkit and cuSPARSELt) are found again by the package's config file.
# GNUInstallDirs: included by the top-level CMakeLists.txt, before src/ uses its directories.
include(CMakePackageConfigHelpers)

set(SLOPE_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/slope")
set(_slope_libraries slope_core)
if(TARGET slope_gpu)
  list(APPEND _slope_libraries slope_gpu)
endif()

install(TARGETS ${_slope_libraries} EXPORT slopeTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})  # headers: slope_core's INSTALL_INTERFACE
# The installed command keeps finding cuSPARSELt and NVRTC where it was linked against them
# (python3's site-packages is on no loader path). INSTALL_RPATH_USE_LINK_PATH leaves out
# directories inside this source tree, and that is where the scripts install cuSPARSELt
# (the clone's .deps/python): its directory is named explicitly.
set_target_properties(slope PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)
if(TARGET slope_gpu)
  get_filename_component(_slope_cusparselt_libdir "${CuSparseLt_LIBRARY}" DIRECTORY)
  set_target_properties(slope PROPERTIES INSTALL_RPATH "${_slope_cusparselt_libdir}")
endif()
install(TARGETS slope RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/slope DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT slopeTargets NAMESPACE slope:: DESTINATION ${SLOPE_INSTALL_CMAKEDIR})

# The config file looks for cuSPARSELt where this build found it first.
set(SLOPE_WITH_GPU OFF)
set(SLOPE_CUSPARSELT_ROOT "")
if(TARGET slope_gpu)
  set(SLOPE_WITH_GPU ON)
  get_filename_component(SLOPE_CUSPARSELT_ROOT "${CuSparseLt_INCLUDE_DIR}" DIRECTORY)
endif()
configure_package_config_file(cmake/slopeConfig.cmake.in "${CMAKE_CURRENT_BINARY_DIR}/slopeConfig.cmake"
                              INSTALL_DESTINATION ${SLOPE_INSTALL_CMAKEDIR})
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/slopeConfigVersion.cmake"
                                 COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/slopeConfig.cmake" "${CMAKE_CURRENT_BINARY_DIR}/slopeConfigVersion.cmake"
              cmake/FindCuSparseLt.cmake
        DESTINATION ${SLOPE_INSTALL_CMAKEDIR})
