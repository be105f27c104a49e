# Finds cuSPARSELt. Looks in CUSPARSELT_ROOT first, then in python3's site-packages (the
# nvidia-cusparselt-cu13 wheel puts it under nvidia/cusparselt/{include,lib} up to 0.8 and
# under nvidia/cu13/{include,lib} from 0.9 on).
# Defines the imported target CuSparseLt::CuSparseLt.
set(_cslt_hints "")
if(CUSPARSELT_ROOT)
  list(APPEND _cslt_hints "${CUSPARSELT_ROOT}")
endif()
if(DEFINED ENV{CUSPARSELT_ROOT})
  list(APPEND _cslt_hints "$ENV{CUSPARSELT_ROOT}")
endif()
find_program(_cslt_python NAMES python3 python)
if(_cslt_python)
  execute_process(
    COMMAND "${_cslt_python}" -c
            "import sysconfig, site, os; ps=[sysconfig.get_paths()['purelib']]+site.getsitepackages(); print(';'.join(os.path.join(p,'nvidia',d) for p in ps for d in ('cusparselt','cu13')))"
    OUTPUT_VARIABLE _cslt_site OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  list(APPEND _cslt_hints ${_cslt_site})
endif()

find_path(CuSparseLt_INCLUDE_DIR cusparseLt.h HINTS ${_cslt_hints} PATH_SUFFIXES include)
# The wheel ships only the versioned soname, so look for it by name too.
find_library(CuSparseLt_LIBRARY NAMES cusparseLt libcusparseLt.so.0 HINTS ${_cslt_hints}
             PATH_SUFFIXES lib lib64)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CuSparseLt REQUIRED_VARS CuSparseLt_LIBRARY CuSparseLt_INCLUDE_DIR)

if(CuSparseLt_FOUND AND NOT TARGET CuSparseLt::CuSparseLt)
  add_library(CuSparseLt::CuSparseLt SHARED IMPORTED)
  set_target_properties(CuSparseLt::CuSparseLt PROPERTIES
    IMPORTED_LOCATION "${CuSparseLt_LIBRARY}"
    IMPORTED_NO_SONAME FALSE
    INTERFACE_INCLUDE_DIRECTORIES "${CuSparseLt_INCLUDE_DIR}")
  get_filename_component(CuSparseLt_LIBRARY_DIR "${CuSparseLt_LIBRARY}" DIRECTORY)
endif()
